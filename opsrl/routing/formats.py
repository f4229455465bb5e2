"""Routing file formats: TSPLIB ``.tsp`` and CVRPLIB ``.vrp``/``.sol`` (through vrplib), opsrl's
JSON format for one instance of any routing problem, and ``.npz`` batches of same-size instances.

The JSON format (one instance; ``op`` shown, optional keys marked):

    {"problem": "op", "name": "op20-s0-0",
     "coords": [[x, y], ...],            # tsp, cvrp, op; node 0 is the depot for cvrp and op
     "demands": [0, d1, ...], "capacity": 30,      # cvrp
     "prizes": [0, p1, ...], "max_length": 2.0,    # op
     "values": [...], "weights": [...], "capacity": 20000,   # kp
     "edge_weight_type": "EXACT",        # optional: EXACT (default), EUC_2D, CEIL_2D, ATT, GEO
     "reference": {"value": 5.3, "source": "..."},  # optional known objective
     "provenance": {...}}                # optional

A best-known value is picked up from a ``.sol`` file beside the instance (its ``Cost`` line) or
from a ``solutions`` list in the same folder (lines ``name : value``, as TSPLIB ships it).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.data import data_dir, examples_dir
from opsrl.core.errors import InstanceFileError, OpsrlError
from opsrl.core.files import atomic_write_text
from opsrl.core.types import Reference
from opsrl.routing.distances import WEIGHT_TYPES
from opsrl.routing.instances import CVRPInstance, KPInstance, OPInstance, TSPInstance

INSTANCE_TYPES = {"tsp": TSPInstance, "cvrp": CVRPInstance, "op": OPInstance, "kp": KPInstance}
# fields beside the name, per problem, as stored in JSON and npz
FIELDS = {
    "tsp": ("coords",),
    "cvrp": ("coords", "demands", "capacity"),
    "op": ("coords", "prizes", "max_length"),
    "kp": ("values", "weights", "capacity"),
}
NATIVE_SUFFIX = {"tsp": ".tsp", "cvrp": ".vrp", "op": ".json", "kp": ".json"}
SUFFIXES = {".tsp": "tsp", ".vrp": "cvrp"}
# EXACT (unrounded Euclidean) has no TSPLIB name; opsrl writes it as EXACT_2D.
FILE_WEIGHT_TYPE = {"EXACT": "EXACT_2D"}


def sniff_problem(path: Path) -> str | None:
    """The problem a file holds, read from its suffix or its ``problem`` field; None if unknown."""
    path = Path(path)
    if path.suffix in SUFFIXES:
        return SUFFIXES[path.suffix]
    if path.suffix == ".json":
        try:
            obj = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InstanceFileError(path, f"not valid JSON ({exc})") from None
        return str(obj["problem"]) if isinstance(obj, dict) and "problem" in obj else None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return str(z["problem"]) if "problem" in z.files else None
        except Exception as exc:
            raise InstanceFileError(path, f"not a readable .npz batch ({exc})") from None
    from opsrl.milp.problem import model_suffix  # light: no SCIP import

    return "milp" if model_suffix(path) else None


def load(problem: str, path: Path) -> list[Any]:
    """Read the instances of ``problem`` stored in ``path`` (format from the suffix)."""
    path = Path(path)
    if not path.is_file():
        raise OpsrlError(f"{path}: instance file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return [_load_json(problem, path)]
    if suffix == ".npz":
        return load_batch(problem, path)
    if suffix in SUFFIXES:
        if SUFFIXES[suffix] != problem:
            raise InstanceFileError(path, f"a {suffix} file holds a {SUFFIXES[suffix]} instance, not {problem}")
        return [_load_vrplib(problem, path)]
    expected = ", ".join(sorted({NATIVE_SUFFIX[problem], ".json", ".npz"}))
    raise InstanceFileError(path, f"unknown file type {suffix or '(none)'} for problem {problem}: expected {expected}")


def save(problem: str, instances: list[Any], path: Path) -> None:
    """Write instances: ``.npz`` holds a batch, the other formats exactly one instance."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        save_batch(problem, instances, path)
        return
    if len(instances) != 1:
        raise OpsrlError(f"{path}: a {suffix} file holds one instance; write {len(instances)} as .npz or into a folder")
    inst = instances[0]
    if suffix == ".json":
        text = json.dumps(_to_json(problem, inst))
    elif suffix == ".tsp" and problem == "tsp" or suffix == ".vrp" and problem == "cvrp":
        text = _to_vrplib(problem, inst)
    else:
        raise OpsrlError(f"{path}: cannot write a {problem} instance as {suffix or '(no suffix)'}: "
                         f"expected {NATIVE_SUFFIX[problem]}, .json or .npz")
    atomic_write_text(path, text)


def find_builtin(problem: str, name: str) -> Path | None:
    """A named instance: a TSPLIB / CVRPLIB X instance of the benchmark data, or an example of instances/."""
    folders = []
    if (root := data_dir()) is not None:
        folders += [root / "tsplib", root / "cvrplib-x"]
    if (ex := examples_dir()) is not None:
        folders.append(ex)
    for folder in folders:
        for suffix in (NATIVE_SUFFIX[problem], ".json"):
            cand = folder / f"{name}{suffix}"
            if cand.is_file() and sniff_problem(cand) == problem:
                return cand
    return None


# ---------------------------------------------------------------- TSPLIB / CVRPLIB

def _load_vrplib(problem: str, path: Path) -> Any:
    import vrplib

    if (problem_line := _diagnose_vrplib(path)) is not None:
        raise InstanceFileError(path, problem_line)
    try:
        data = vrplib.read_instance(path, compute_edge_weights=False)
    except Exception as exc:
        raise InstanceFileError(path, f"not a readable TSPLIB/CVRPLIB file ({exc})") from None
    ftype = str(data.get("type", "")).upper()
    expected_type = {"tsp": ("TSP",), "cvrp": ("CVRP", "VRP")}[problem]
    if ftype and ftype not in expected_type:
        raise InstanceFileError(path, f"TYPE is {ftype}, expected {expected_type[0]} for problem {problem}")
    if "dimension" not in data:
        raise InstanceFileError(path, "missing DIMENSION in the header")
    dim = int(data["dimension"])
    wtype = str(data.get("edge_weight_type", "EUC_2D")).upper()
    wtype = {"EXACT_2D": "EXACT"}.get(wtype, wtype)
    if wtype not in WEIGHT_TYPES:
        raise InstanceFileError(path, f"EDGE_WEIGHT_TYPE {wtype} is not supported: expected one of "
                                      f"EUC_2D, CEIL_2D, ATT, GEO, EXACT_2D, EXPLICIT")
    explicit = None
    if wtype == "EXPLICIT":
        try:
            explicit = np.asarray(vrplib.read_instance(path)["edge_weight"], dtype=float)
        except Exception as exc:
            raise InstanceFileError(path, f"EDGE_WEIGHT_SECTION unreadable ({exc})") from None
        coords = data.get("node_coord", np.zeros((dim, 2)))
        if explicit.shape != (dim, dim):
            raise InstanceFileError(path, f"EDGE_WEIGHT_SECTION gives a {explicit.shape} matrix, expected {dim} x {dim}")
    else:
        if "node_coord" not in data:
            raise InstanceFileError(path, "missing NODE_COORD_SECTION")
        coords = np.asarray(data["node_coord"], dtype=float)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise InstanceFileError(path, "NODE_COORD_SECTION must hold 'index x y' lines (2-D coordinates)")
        if len(coords) != dim:
            raise InstanceFileError(path, f"DIMENSION is {dim} but NODE_COORD_SECTION has {len(coords)} nodes (truncated file?)")
    name = str(data.get("name") or path.stem)
    common = dict(coords=coords, name=name, edge_weight_type=wtype, explicit=explicit,
                  reference=find_reference(path, name), provenance={"source": str(path)})
    if problem == "tsp":
        return TSPInstance(**common)
    if "capacity" not in data:
        raise InstanceFileError(path, "missing CAPACITY in the header")
    if "demand" not in data:
        raise InstanceFileError(path, "missing DEMAND_SECTION")
    demands = np.asarray(data["demand"], dtype=float).reshape(-1)
    if len(demands) != dim:
        raise InstanceFileError(path, f"DIMENSION is {dim} but DEMAND_SECTION has {len(demands)} entries (truncated file?)")
    depots = np.asarray(data.get("depot", [0])).reshape(-1)
    if depots.size != 1 or int(depots[0]) != 0:
        raise InstanceFileError(path, f"DEPOT_SECTION lists {[int(d) + 1 for d in depots]}: opsrl expects one depot, node 1")
    return CVRPInstance(**common, demands=demands, capacity=float(data["capacity"]))


_SECTION_FIELDS = {"NODE_COORD_SECTION": (3, "index x y"), "DEMAND_SECTION": (2, "index demand")}


def _diagnose_vrplib(path: Path) -> str | None:
    """Find the first malformed line of a TSPLIB-style file, for an error message vrplib cannot give."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    section = None
    saw_header = False
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line == "EOF":
            continue
        head = line.split()[0].rstrip(":").upper()
        if head.endswith("_SECTION"):
            section = head
            continue
        if ":" in line and not line[0].isdigit() and not line[0] == "-":
            saw_header = True
            section = None
            continue
        if section in _SECTION_FIELDS:
            want, what = _SECTION_FIELDS[section]
            tokens = line.split()
            if len(tokens) != want:
                return f"line {no}: {section} entry {line!r} has {len(tokens)} fields, expected {want} ({what})"
            try:
                [float(t) for t in tokens]
            except ValueError:
                return f"line {no}: {section} entry {line!r} is not numeric, expected {what}"
        elif section is None and not saw_header:
            return f"line {no}: {line[:40]!r} is not a 'KEY : value' header line; expected a TSPLIB/CVRPLIB file"
    if not saw_header:
        return "no 'KEY : value' header found; expected a TSPLIB/CVRPLIB file"
    return None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _to_vrplib(problem: str, inst: Any) -> str:
    lines = [f"NAME : {inst.name}", f"TYPE : {problem.upper()}",
             f"COMMENT : {json.dumps(inst.provenance, default=str)}" if inst.provenance else "COMMENT : opsrl",
             f"DIMENSION : {inst.num_nodes}",
             f"EDGE_WEIGHT_TYPE : {FILE_WEIGHT_TYPE.get(inst.edge_weight_type, inst.edge_weight_type)}"]
    if inst.edge_weight_type == "EXPLICIT":
        raise OpsrlError(f"instance {inst.name}: writing EXPLICIT matrices to {problem} files is not supported; use .json")
    if problem == "cvrp":
        lines.append(f"CAPACITY : {_fmt(inst.capacity)}")
    lines.append("NODE_COORD_SECTION")
    lines += [f"{i + 1} {_fmt(x)} {_fmt(y)}" for i, (x, y) in enumerate(inst.coords)]
    if problem == "cvrp":
        lines.append("DEMAND_SECTION")
        lines += [f"{i + 1} {_fmt(d)}" for i, d in enumerate(inst.demands)]
        lines += ["DEPOT_SECTION", "1", "-1"]
    lines.append("EOF")
    return "\n".join(lines) + "\n"


def find_reference(path: Path, name: str) -> Reference | None:
    """A best-known value from ``<stem>.sol`` beside the file, or from a ``solutions`` list in its folder."""
    sol = path.with_suffix(".sol")
    if sol.is_file():
        match = re.search(r"^\s*cost\s*:?\s*([-+0-9.eE]+)", sol.read_text(errors="replace"), re.I | re.M)
        if match:
            return Reference(float(match.group(1)), f"bks {sol.name}")
    listing = path.parent / "solutions"
    if listing.is_file():
        for line in listing.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == name:
                try:
                    return Reference(float(value.split()[0]), f"bks {listing.name} list")
                except (ValueError, IndexError):
                    return None
    return None


def read_cvrp_solution(path: Path) -> list[list[int]]:
    """Routes of a CVRPLIB ``.sol`` file (customers numbered 1..n, as opsrl numbers them)."""
    import vrplib

    try:
        return [list(map(int, r)) for r in vrplib.read_solution(path)["routes"]]
    except Exception as exc:
        raise InstanceFileError(path, f"not a CVRPLIB solution file ({exc})") from None


def write_cvrp_solution(path: Path, routes: list[list[int]], cost: float) -> None:
    """A CVRPLIB ``.sol`` file: ``Route #k: ...`` lines and the cost."""
    lines = [f"Route #{k}: {' '.join(map(str, r))}" for k, r in enumerate((r for r in routes if r), 1)]
    lines.append(f"Cost {_fmt(round(cost, 6))}")
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


# ---------------------------------------------------------------- JSON

def _to_json(problem: str, inst: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"problem": problem, "name": inst.name}
    for f in FIELDS[problem]:
        value = getattr(inst, f)
        out[f] = value.tolist() if isinstance(value, np.ndarray) else float(value)
    if problem != "kp":
        out["edge_weight_type"] = inst.edge_weight_type
        if inst.edge_weight_type == "EXPLICIT":
            out["explicit"] = inst.explicit.tolist()
    if inst.reference is not None:
        out["reference"] = {"value": inst.reference.value, "source": inst.reference.source}
    if inst.provenance:
        out["provenance"] = inst.provenance
    return out


def _load_json(problem: str, path: Path) -> Any:
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InstanceFileError(path, f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InstanceFileError(path, "expected a JSON object with the instance fields")
    if obj.get("problem", problem) != problem:
        raise InstanceFileError(path, f"field 'problem' is {obj.get('problem')!r}, expected {problem!r}")
    kwargs: dict[str, Any] = {"name": str(obj.get("name") or path.stem), "provenance": obj.get("provenance") or {"source": str(path)}}
    for f in FIELDS[problem]:
        if f not in obj:
            raise InstanceFileError(path, f"missing field {f!r} (a {problem} instance needs {', '.join(FIELDS[problem])})")
        kwargs[f] = _json_numbers(path, f, obj[f], scalar=f in ("capacity", "max_length"))
    if problem != "kp":
        wtype = str(obj.get("edge_weight_type", "EXACT")).upper()
        if wtype not in WEIGHT_TYPES:
            raise InstanceFileError(path, f"field 'edge_weight_type' is {wtype!r}, expected one of {', '.join(WEIGHT_TYPES)}")
        kwargs["edge_weight_type"] = wtype
        if wtype == "EXPLICIT":
            kwargs["explicit"] = _json_numbers(path, "explicit", obj.get("explicit"), scalar=False)
        coords = kwargs["coords"]
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise InstanceFileError(path, "field 'coords' must be a list of [x, y] pairs")
        n = len(coords)
        for f in ("demands", "prizes"):
            if f in kwargs and kwargs[f].shape != (n,):
                raise InstanceFileError(path, f"field {f!r} has {kwargs[f].size} entries, expected {n} (one per node, depot first)")
    elif kwargs["values"].shape != kwargs["weights"].shape or kwargs["values"].ndim != 1:
        raise InstanceFileError(path, f"fields 'values' and 'weights' must be lists of one length, got "
                                      f"{kwargs['values'].size} and {kwargs['weights'].size}")
    if isinstance(obj.get("reference"), dict):
        try:
            kwargs["reference"] = Reference(float(obj["reference"]["value"]), str(obj["reference"].get("source", path.name)))
        except (KeyError, TypeError, ValueError):
            raise InstanceFileError(path, "field 'reference' must be {\"value\": number, \"source\": text}") from None
    else:
        kwargs["reference"] = find_reference(path, kwargs["name"])
    return INSTANCE_TYPES[problem](**kwargs)


def _json_numbers(path: Path, field: str, value: Any, scalar: bool) -> Any:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InstanceFileError(path, f"field {field!r} must be {'a number' if scalar else 'numbers'}") from None
    if scalar:
        if arr.ndim != 0:
            raise InstanceFileError(path, f"field {field!r} must be a single number")
        return float(arr)
    if arr.ndim == 0 or not np.all(np.isfinite(arr)):
        raise InstanceFileError(path, f"field {field!r} must be a list of finite numbers")
    return arr


# ---------------------------------------------------------------- npz batches

def save_batch(problem: str, instances: list[Any], path: Path, extra: dict[str, np.ndarray] | None = None) -> None:
    """Stack same-size instances into one ``.npz`` (fields, names, references, provenance).

    ``extra`` arrays (labels, for instance) are stored beside them under their own names, which must
    not clash with the batch's; ``load_batch`` ignores them.
    """
    if not instances:
        raise OpsrlError(f"{path}: no instances to write")
    arrays: dict[str, Any] = {"problem": np.array(problem), "names": np.array([i.name for i in instances])}
    for f in FIELDS[problem]:
        try:
            arrays[f] = np.stack([np.asarray(getattr(i, f), dtype=float) for i in instances])
        except ValueError:
            raise OpsrlError(f"{path}: an .npz batch holds instances of one size; these differ") from None
    if problem != "kp":
        arrays["edge_weight_type"] = np.array([i.edge_weight_type for i in instances])
    refs = [i.reference for i in instances]
    arrays["reference"] = np.array([r.value if r else math.nan for r in refs])
    arrays["reference_source"] = np.array([r.source if r else "" for r in refs])
    arrays["provenance"] = np.array([json.dumps(i.provenance, default=str) for i in instances])
    for key, value in (extra or {}).items():
        if key in arrays:
            raise OpsrlError(f"{path}: extra array {key!r} clashes with a field of the batch")
        arrays[key] = np.asarray(value)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_batch(problem: str, path: Path) -> list[Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:
        raise InstanceFileError(path, f"not a readable .npz batch ({exc})") from None
    if str(data.get("problem", "")) != problem:
        raise InstanceFileError(path, f"batch holds problem {str(data.get('problem', '?'))!r}, expected {problem!r}")
    for f in (*FIELDS[problem], "names"):
        if f not in data:
            raise InstanceFileError(path, f"missing array {f!r}")
    count = len(data["names"])
    out = []
    for k in range(count):
        kwargs: dict[str, Any] = {f: (data[f][k] if data[f].ndim > 1 else float(data[f][k])) for f in FIELDS[problem]}
        if problem != "kp" and "edge_weight_type" in data:
            kwargs["edge_weight_type"] = str(data["edge_weight_type"][k])
        ref = data.get("reference")
        if ref is not None and not math.isnan(ref[k]):
            kwargs["reference"] = Reference(float(ref[k]), str(data["reference_source"][k]))
        prov = data.get("provenance")
        kwargs["provenance"] = json.loads(str(prov[k])) if prov is not None else {"source": f"{path}#{k}"}
        out.append(INSTANCE_TYPES[problem](name=str(data["names"][k]), **kwargs))
    return out
