"""The records passed between problems, solvers and the benchmark harness."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """How a solver run ended.

    ``feasible`` means a solution was found and the solver finished its own work (for heuristics
    whose budget is the time limit, that includes using the limit). ``timeout`` means the run
    was stopped by its limit before it could finish (an exact solver without proof, or a run that
    had to be killed); a solution found before the stop is kept.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIMEOUT = "timeout"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Reference:
    """A known objective value for an instance (best-known, optimal, or a bound) and where it came from."""

    value: float
    source: str


@dataclass(frozen=True)
class Evaluation:
    """What a problem's ``evaluate`` says about a solution: the only source of costs in opsrl."""

    objective: float
    feasible: bool
    violations: tuple[str, ...] = ()


@dataclass
class Solution:
    """A solver's answer: its status, the solution in the problem's own form, and run statistics.

    ``data`` is plain JSON-able Python (a tour, a list of routes, a list of items). ``stats``
    holds what the solver reports about itself (nodes, bound, its own objective) for the record;
    costs are never taken from it.
    """

    status: Status
    data: Any = None
    stats: dict[str, Any] = field(default_factory=dict)
    wall_s: float = float("nan")
    message: str = ""
