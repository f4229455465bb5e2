"""Helpers shared by the commands: resolving instances from options, printing results."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.registry import get_problem, parse_assignments


def resolve_problem(problem: str | None, instance: str | None) -> str:
    """The problem named by --problem, or told by the instance file; one of them is needed."""
    if problem:
        get_problem(problem)
        return problem
    if instance:
        from opsrl.routing.formats import sniff_problem

        path = Path(instance)
        sniffed = sniff_problem(path) if path.is_file() else None
        if sniffed:
            return sniffed
        if not path.exists():
            raise OpsrlError(f"{instance}: no such file (pass --problem to look up a built-in instance name)")
    raise UsageError("--problem is required (or an --instance file whose type tells the problem)")


def load_one(problem: str, instance: str | None, size: int, seed: int, sets: list[str] | None) -> Any:
    """The instance to solve: from a file or built-in name, else generated; then ``--set`` overrides."""
    import opsrl

    if instance:
        insts = opsrl.load_instances(instance, problem)
        if len(insts) != 1:
            raise OpsrlError(f"{instance}: holds {len(insts)} instances; opsrl solve takes one (use opsrl bench for a batch)")
        inst = insts[0]
    else:
        inst = opsrl.generate(problem, size=size, seed=seed)
    return apply_sets(problem, inst, sets)


def apply_sets(problem: str, inst: Any, sets: list[str] | None) -> Any:
    prob = get_problem(problem)
    for key, value in parse_assignments(sets, "--set").items():
        inst = prob.override(inst, key, value)
    return inst


def expand_instance_paths(problem: str, sources: list[str]) -> list[Any]:
    """Instances from files, folders (every file of a known type inside), batches and built-in names."""
    import opsrl
    from opsrl.routing.formats import sniff_problem

    out: list[Any] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and sniff_problem(p) == problem)
            if not files:
                raise OpsrlError(f"{path}: folder holds no {problem} instance files")
            for f in files:
                out.extend(opsrl.load_instances(f, problem))
        else:
            out.extend(opsrl.load_instances(src, problem))
    return out


def fmt_num(x: Any, digits: int = 6) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def err(message: str) -> None:
    """One line on stderr."""
    sys.stderr.write(f"opsrl: {message}\n")
