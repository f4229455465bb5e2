"""Problem and solver registries: problems by name, solvers by (problem, name).

Families register themselves when their package is imported; the registry imports a family only
when one of its names is asked for, so that ``opsrl --help`` and the classical paths stay light.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrl.core.errors import UsageError
from opsrl.core.types import Evaluation, Solution

# problem name -> module that registers it (imported on first use)
FAMILY_MODULES: dict[str, str] = {
    "tsp": "opsrl.routing",
    "cvrp": "opsrl.routing",
    "op": "opsrl.routing",
    "kp": "opsrl.routing",
    "milp": "opsrl.milp",
    "inventory": "opsrl.inventory",
    "lotsizing": "opsrl.lotsizing",
    "hydro": "opsrl.hydro",
}


class Problem(ABC):
    """A problem: generates, reads and writes instances, and is the only place costs are computed."""

    name: str = ""
    family: str = ""
    sense: str = "min"  # "min" or "max": which way the objective improves
    description: str = ""
    default_solver: str = ""  # what ``opsrl solve`` uses when no solver is named
    native_suffix: str = ".json"  # the file type ``opsrl generate --out FOLDER/`` writes
    default_compare: str = ""  # the classical solver a neural default is compared with by ``opsrl solve``

    @abstractmethod
    def generate(self, size: int, seed: int, index: int = 0) -> Any:
        """Instance number ``index`` of the seeded stream of random instances of this size."""

    @abstractmethod
    def load(self, path: Path) -> list[Any]:
        """Read the instances in a file (one for single-instance formats, many for a batch)."""

    @abstractmethod
    def save(self, instances: list[Any], path: Path) -> None:
        """Write instances in the format the path's suffix names."""

    @abstractmethod
    def evaluate(self, instance: Any, solution: Any) -> Evaluation:
        """Objective and feasibility of ``solution`` on ``instance``: every cost in opsrl comes from here."""

    def validate(self, instance: Any) -> None:
        """Raise InfeasibleInstanceError when no solution can exist (checked before solving)."""

    def override(self, instance: Any, key: str, value: str) -> Any:
        """A copy of ``instance`` with one field set from a ``--set key=value`` string."""
        raise UsageError(f"--set {key}: problem {self.name} has no overridable field {key!r}")

    def builtin(self, name: str) -> Any | None:
        """A built-in instance by name, or None when the name is not one."""
        return None

    def save_solution(self, instance: Any, solution: Any, objective: float, path: Path) -> None:
        """Write a solution in the problem's own format (JSON by default)."""
        Path(path).write_text(json.dumps({"problem": self.name, "instance": instance.name,
                                          "objective": objective, "solution": solution}) + "\n")

    def plot(self, instance: Any, solution: Any, path: Path, title: str = "") -> None:
        raise UsageError(f"--plot: problem {self.name} has no solution plot")


SolveFn = Callable[..., Solution]


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver: the function, what it solves, and what running it needs."""

    problem: str
    name: str
    fn: SolveFn
    description: str
    needs_torch: bool = False
    exact: bool = False
    imports: tuple[str, ...] = ()  # modules a worker imports before the clock starts: its time is for solving

    def params(self) -> dict[str, inspect.Parameter]:
        """The solver options a user may set with ``--param`` (keyword arguments beyond the contract)."""
        sig = inspect.signature(self.fn)
        return {n: p for n, p in sig.parameters.items()
                if n not in ("instance", "time_limit", "seed") and p.kind == p.KEYWORD_ONLY}

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Coerce ``--param`` strings to the declared types; an unknown key is a usage error."""
        declared = self.params()
        out = {}
        for key, value in params.items():
            if key not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise UsageError(f"--param {key}: solver {self.name} for {self.problem} has no option "
                                 f"{key!r} (options: {known})")
            out[key] = coerce(value, declared[key].default, f"--param {key}")
        return out


_PROBLEMS: dict[str, Problem] = {}
_SOLVERS: dict[tuple[str, str], SolverSpec] = {}


def register_problem(problem: Problem) -> Problem:
    _PROBLEMS[problem.name] = problem
    return problem


def register_solver(problems: Iterable[str], name: str, description: str, *,
                    needs_torch: bool = False, exact: bool = False,
                    imports: Iterable[str] = ()) -> Callable[[SolveFn], SolveFn]:
    """Decorator: register ``fn(instance, *, time_limit, seed, **options) -> Solution`` for each problem.

    ``imports`` names the packages the solver imports lazily: a benchmark worker imports them before
    the solver's clock starts, so that wall times (and the time left for searching) do not include them."""

    def deco(fn: SolveFn) -> SolveFn:
        for problem in problems:
            _SOLVERS[(problem, name)] = SolverSpec(problem, name, fn, description, needs_torch, exact, tuple(imports))
        return fn

    return deco


def _load_family(problem: str) -> None:
    module = FAMILY_MODULES.get(problem)
    if module is not None and _family_present(module):
        importlib.import_module(module)


def get_problem(name: str) -> Problem:
    """The registered problem called ``name``; an unknown name is a usage error listing the known ones."""
    _load_family(name)
    if name not in _PROBLEMS:
        raise UsageError(f"unknown problem {name!r}: expected one of {', '.join(problem_names())}")
    return _PROBLEMS[name]


def problem_names() -> list[str]:
    """The problems whose family is installed (a family package may be left out of a build)."""
    return [name for name, module in FAMILY_MODULES.items() if _family_present(module)]


def _family_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def get_solver(problem: str, name: str) -> SolverSpec:
    """The solver ``name`` for ``problem``; says which solvers exist when it does not."""
    get_problem(problem)
    spec = _SOLVERS.get((problem, name))
    if spec is None:
        known = solver_names(problem)
        others = sorted(p for (p, n) in _SOLVERS if n == name)
        hint = f" (it solves {', '.join(others)})" if others else ""
        raise UsageError(f"unknown solver {name!r} for problem {problem}{hint}: expected one of {', '.join(known)}")
    return spec


def solver_names(problem: str) -> list[str]:
    get_problem(problem)
    return sorted(n for (p, n) in _SOLVERS if p == problem)


def solvers_for(problem: str) -> list[SolverSpec]:
    return [get_solver(problem, n) for n in solver_names(problem)]


def coerce(text: Any, default: Any, what: str) -> Any:
    """Turn a ``key=value`` string into the type of ``default`` (or the obvious scalar type)."""
    if not isinstance(text, str):
        return text
    kind = type(default) if default is not None and default is not inspect.Parameter.empty else None
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind in (int, float):
            return kind(text)
    except ValueError:
        raise UsageError(f"{what}={text}: expected a {kind.__name__}") from None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_assignments(items: Iterable[str] | None, what: str) -> dict[str, str]:
    """Parse repeated ``key=value`` options into a dict; a malformed one is a usage error."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out
