"""The milp problem: an instance is a model file (.mps/.lp, optionally gzipped) or a generated model.

``evaluate`` re-reads the model and checks a solution against it (bounds, integrality, every linear
constraint within tolerance) and computes the objective: the one place a MILP solution is costed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from opsrl.core.errors import InstanceFileError, OpsrlError, UsageError
from opsrl.core.registry import Problem, register_problem
from opsrl.core.types import Evaluation, Reference

SUFFIXES = (".mps", ".lp", ".mps.gz", ".lp.gz")
FEAS_TOL = 1e-6  # constraint and bound tolerance, relative to max(1, |side|) as SCIP's feastol
INT_TOL = 1e-5  # distance to the nearest integer allowed for an integer variable


def model_suffix(path: str | Path) -> str | None:
    """The model suffix of ``path`` (``.mps``, ``.lp``, ``.mps.gz``, ``.lp.gz``), or None."""
    name = str(path).lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


@dataclass(frozen=True)
class MILPInstance:
    """A MILP model: a file on disk, or LP text from a generator; a name and where it came from."""

    name: str
    path: str | None = None
    text: str | None = field(default=None, repr=False)
    reference: Reference | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    problem: str = "milp"

    def model_path(self) -> Path:
        """A file SCIP can read: the instance's own file, or its text written once to a temp cache."""
        if self.path is not None:
            return Path(self.path)
        if self.text is None:
            raise OpsrlError(f"{self.name}: milp instance has neither a file nor model text")
        digest = hashlib.sha1(self.text.encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / "opsrl-milp" / f"{digest}.lp"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{id(self)}.partial")
            tmp.write_text(self.text)
            tmp.replace(path)
        return path


@contextlib.contextmanager
def _c_output_silenced() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null: SCIP's reader prints its parse errors from C,
    past ``hideOutput``, and our own one-line error says the same."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def read_model(path: str | Path, quiet: bool = True) -> Any:
    """A PySCIPOpt Model read from a .mps/.lp(.gz) file; an unreadable file is a one-line error."""
    from pyscipopt import Model

    path = Path(path)
    if not path.is_file():
        raise InstanceFileError(path, "file not found")
    model = Model()
    if quiet:
        model.hideOutput()
    try:
        with _c_output_silenced() if quiet else contextlib.nullcontext():
            model.readProblem(str(path))
    except Exception as exc:
        raise InstanceFileError(path, f"SCIP cannot read it as a MILP model ({exc})") from None
    if model.getNVars() == 0:
        raise InstanceFileError(path, "SCIP read no variables from it: not a MILP model in .mps/.lp format")
    return model


@dataclass
class ParsedModel:
    """The model's data in arrays, for checking solutions: variables, linear rows (CSR), objective."""

    names: list[str]
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    obj: np.ndarray
    offset: float
    sense: str
    row_names: list[str]
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    lhs: np.ndarray
    rhs: np.ndarray
    index: dict[str, int]


_PARSED: dict[str, ParsedModel] = {}


def parse_model(instance: MILPInstance) -> ParsedModel:
    """The instance's model as arrays (cached per file); a non-linear constraint is an error."""
    path = instance.model_path()
    key = f"{path}:{path.stat().st_mtime_ns}"
    if key in _PARSED:
        return _PARSED[key]
    model = read_model(path)
    variables = model.getVars()
    names = [v.name for v in variables]
    index = {n: i for i, n in enumerate(names)}
    inf = model.infinity()

    def finite(x: float) -> float:
        return -math.inf if x <= -inf else math.inf if x >= inf else x

    lb = np.array([finite(v.getLbOriginal()) for v in variables])
    ub = np.array([finite(v.getUbOriginal()) for v in variables])
    integer = np.array([v.vtype() in ("BINARY", "INTEGER", "IMPLINT") for v in variables], dtype=bool)
    obj = np.array([v.getObj() for v in variables])
    indptr, indices, values, lhs, rhs, row_names = [0], [], [], [], [], []
    for cons in model.getConss():
        if cons.getConshdlrName() != "linear":
            raise OpsrlError(f"{instance.name}: constraint {cons.name} is of type {cons.getConshdlrName()}; "
                             "opsrl checks linear constraints only")
        for var_name, coef in model.getValsLinear(cons).items():
            indices.append(index[var_name])
            values.append(coef)
        indptr.append(len(indices))
        lhs.append(finite(model.getLhs(cons)))
        rhs.append(finite(model.getRhs(cons)))
        row_names.append(cons.name)
    parsed = ParsedModel(names, lb, ub, integer, obj, float(model.getObjoffset()),
                         "max" if model.getObjectiveSense() == "maximize" else "min", row_names,
                         np.array(indptr), np.array(indices, dtype=np.int64), np.array(values, dtype=float),
                         np.array(lhs, dtype=float), np.array(rhs, dtype=float), index)
    model.freeProb()
    _PARSED[key] = parsed
    return parsed


def solution_vector(parsed: ParsedModel, solution: Any) -> tuple[np.ndarray, list[str]]:
    """Values of all variables from a solution ``{"x": {name: value}}`` (absent names are 0)."""
    values = solution.get("x") if isinstance(solution, dict) else None
    if not isinstance(values, dict):
        return np.zeros(0), ['solution must be {"x": {variable name: value}}']
    x = np.zeros(len(parsed.names))
    problems = []
    for name, value in values.items():
        i = parsed.index.get(name)
        if i is None:
            problems.append(f"unknown variable {name!r}")
            continue
        try:
            x[i] = float(value)
        except (TypeError, ValueError):
            problems.append(f"variable {name} has non-numeric value {value!r}")
    return x, problems


def check_solution(parsed: ParsedModel, x: np.ndarray, limit: int = 5) -> list[str]:
    """Violated bounds, integrality and rows (at most ``limit`` of each kind named)."""
    out: list[str] = []
    if not np.all(np.isfinite(x)):
        return ["solution holds non-finite values"]
    tol_lb = FEAS_TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(parsed.lb), parsed.lb, 0.0)))
    tol_ub = FEAS_TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(parsed.ub), parsed.ub, 0.0)))
    bad = np.nonzero((x < parsed.lb - tol_lb) | (x > parsed.ub + tol_ub))[0]
    out += [f"variable {parsed.names[i]}={x[i]:g} outside [{parsed.lb[i]:g}, {parsed.ub[i]:g}]" for i in bad[:limit]]
    frac = np.abs(x - np.round(x))
    bad = np.nonzero(parsed.integer & (frac > INT_TOL))[0]
    out += [f"integer variable {parsed.names[i]}={x[i]:g} is fractional" for i in bad[:limit]]
    if len(parsed.lhs):
        rows = np.repeat(np.arange(len(parsed.lhs)), np.diff(parsed.indptr))
        act = np.bincount(rows, weights=parsed.values * x[parsed.indices], minlength=len(parsed.lhs))
        tol_l = FEAS_TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(parsed.lhs), parsed.lhs, 0.0)))
        tol_r = FEAS_TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(parsed.rhs), parsed.rhs, 0.0)))
        bad = np.nonzero((act < parsed.lhs - tol_l) | (act > parsed.rhs + tol_r))[0]
        out += [f"row {parsed.row_names[i]}: activity {act[i]:.9g} outside [{parsed.lhs[i]:g}, {parsed.rhs[i]:g}]"
                for i in bad[:limit]]
    return out


def read_solu(folder: Path) -> dict[str, tuple[str, float | None]]:
    """Known results from a ``*.solu`` file in ``folder``: name -> ("opt"|"best"|"inf", value)."""
    out: dict[str, tuple[str, float | None]] = {}
    for solu in sorted(folder.glob("*.solu")):
        for line in solu.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("=opt=", "=best=", "=inf="):
                value = float(parts[2]) if len(parts) > 2 else None
                out[parts[1]] = (parts[0].strip("="), value)
    return out


def _stem(path: Path) -> str:
    suffix = model_suffix(path) or path.suffix
    return path.name[: -len(suffix)] if suffix else path.stem


class MILPProblem(Problem):
    name = "milp"
    native_suffix = ".mps"
    family = "milp"
    sense = "min"  # per instance in fact: evaluate reports the model's own objective
    description = ("Mixed-integer linear programs (.mps/.lp or generated set cover, auctions, facility location, "
                   "independent set); solved by SCIP with learned or classical branching")
    default_solver = "scip-gnn"

    def generate(self, size: int, seed: int, index: int = 0) -> MILPInstance:
        """A Balas-Ho set cover with ``size`` rows and ``2 * size`` columns (size 500: Gasse's easy size)."""
        from opsrl.milp.generators import generate_text

        params = {"nrows": int(size), "ncols": 2 * int(size)}
        text = generate_text("setcover", seed, index, **params)
        return MILPInstance(name=f"setcover-{size}-s{seed}-{index}", text=text,
                            provenance={"generator": "setcover", "params": params, "seed": seed, "index": index})

    def load(self, path: Path) -> list[MILPInstance]:
        path = Path(path)
        if model_suffix(path) is None:
            raise InstanceFileError(path, f"not a MILP model file (expected one of {', '.join(SUFFIXES)})")
        if not path.is_file():
            raise InstanceFileError(path, "file not found")
        name = _stem(path)
        reference, provenance = None, {"source": str(path)}
        known = read_solu(path.parent).get(name)
        if known is not None:
            kind, value = known
            provenance["known"] = kind
            if value is not None and kind in ("opt", "best"):
                reference = Reference(value, "optimal" if kind == "opt" else "best-known")
        return [MILPInstance(name=name, path=str(path.resolve()), reference=reference, provenance=provenance)]

    def save(self, instances: list[MILPInstance], path: Path) -> None:
        path = Path(path)
        if len(instances) != 1:
            raise UsageError(f"{path}: a milp model file holds one instance, got {len(instances)}")
        suffix = model_suffix(path)
        if suffix is None:
            raise UsageError(f"{path}: milp instances are written as {', '.join(SUFFIXES)}")
        inst = instances[0]
        src = inst.model_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if model_suffix(src) == suffix:
            shutil.copyfile(src, path)
        elif suffix.endswith(".gz") and model_suffix(src) == suffix[:-3]:
            with open(src, "rb") as fin, gzip.open(path, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            read_model(src).writeProblem(str(path), verbose=False)

    def evaluate(self, instance: MILPInstance, solution: Any) -> Evaluation:
        parsed = parse_model(instance)
        x, problems = solution_vector(parsed, solution)
        if problems:
            return Evaluation(math.nan, False, tuple(problems[:5]))
        violations = check_solution(parsed, x)
        objective = float(parsed.obj @ x + parsed.offset)
        return Evaluation(objective, not violations, tuple(violations))

    def validate(self, instance: MILPInstance) -> None:
        """Read the model before solving, so an unreadable or non-linear file is a one-line error here."""
        parse_model(instance)

    def builtin(self, name: str) -> MILPInstance | None:
        """A MIPLIB 3 model of the shared data folder by name (e.g. ``lseu``)."""
        from opsrl.core.data import data_dir

        root = data_dir()
        if root is None:
            return None
        for suffix in SUFFIXES:
            path = root / "miplib3" / f"{name}{suffix}"
            if path.is_file():
                return self.load(path)[0]
        return None

    def override(self, instance: MILPInstance, key: str, value: str) -> MILPInstance:
        """``--set family=cauctions|facilities|indset|setcover`` and ``--set level=easy|medium|hard``
        regenerate a generated instance with that family / Gasse size (same seed and index)."""
        from opsrl.milp.generators import SIZES, generate_text

        prov = instance.provenance
        if "generator" not in prov:
            raise UsageError(f"--set {key}: only generated milp instances can be changed, not a model file")
        family, params = prov["generator"], dict(prov["params"])
        if key == "family":
            if value not in SIZES:
                raise UsageError(f"--set family={value}: expected one of {', '.join(SIZES)}")
            family, params = value, dict(SIZES[value]["easy"])
        elif key == "level":
            if value not in SIZES[family]:
                raise UsageError(f"--set level={value}: expected one of easy, medium, hard")
            params = dict(SIZES[family][value])
        else:
            raise UsageError(f"--set {key}: milp takes family=... or level=...")
        seed, index = prov["seed"], prov["index"]
        text = generate_text(family, seed, index, **params)
        name = f"{family}-{'-'.join(str(v) for v in params.values())}-s{seed}-{index}"
        return dataclasses.replace(instance, name=name, text=text,
                                   provenance={"generator": family, "params": params, "seed": seed, "index": index})


PROBLEM = register_problem(MILPProblem())
