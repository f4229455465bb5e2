"""Comparison metrics: gap to a reference, shifted geometric mean, wins."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def gap_pct(objective: float | None, reference: float | None, sense: str = "min") -> float:
    """Percent by which ``objective`` is worse than ``reference`` (positive = worse), NaN if unknown.

    For minimisation this is ``100 (obj - ref) / |ref|``; for maximisation ``100 (ref - obj) / |ref|``.
    A zero reference gives 0 when the objective equals it and NaN otherwise.
    """
    if objective is None or reference is None:
        return math.nan
    objective, reference = float(objective), float(reference)
    if math.isnan(objective) or math.isnan(reference):
        return math.nan
    diff = objective - reference if sense == "min" else reference - objective
    if reference == 0:
        return 0.0 if diff == 0 else math.nan
    return 100.0 * diff / abs(reference)


def shifted_geomean(values: Iterable[float], shift: float = 1.0) -> float:
    """Shifted geometric mean ``exp(mean(log(v + shift))) - shift``, the usual way to average solve times."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return math.nan
    if any(v + shift <= 0 for v in vals):
        raise ValueError(f"shifted_geomean needs every value + shift > 0 (shift={shift})")
    return math.exp(sum(math.log(v + shift) for v in vals) / len(vals)) - shift


def wins(objectives: Mapping[str, Mapping[str, float]], sense: str = "min", tol: float = 1e-9) -> dict[str, int]:
    """Count, per solver, the instances on which it reached the best objective (ties count for all).

    ``objectives`` maps instance -> {solver: objective}; NaN or missing objectives never win.
    """
    counts: dict[str, int] = {}
    for per_solver in objectives.values():
        for solver in per_solver:
            counts.setdefault(solver, 0)
        valid = {s: float(v) for s, v in per_solver.items() if v is not None and not math.isnan(float(v))}
        if not valid:
            continue
        best = min(valid.values()) if sense == "min" else max(valid.values())
        for solver, value in valid.items():
            if abs(value - best) <= tol * max(1.0, abs(best)):
                counts[solver] += 1
    return counts
