"""opsrl: a decision engine for combinatorial optimization and operations planning.

The public API, re-exported by name::

    from opsrl import generate, load_instance, solve, evaluate

    inst = generate("cvrp", size=50, seed=0)
    result = solve(inst, solver="pyvrp", time_limit=5)
    print(result.objective, result.feasible, result.gap_pct)
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    import os

    from opsrl.routing.policy import BQPolicy

from opsrl.api import (  # noqa: E402
    Result,
    evaluate,
    generate,
    get_problem,
    list_problems,
    list_solvers,
    load_instance,
    load_instances,
    save_instance,
    solve,
)


def load_policy(problem: str, checkpoint: "str | os.PathLike | None" = None, device: str = "cpu") -> "BQPolicy":
    """A trained BQ policy (the shipped default for ``problem`` when ``checkpoint`` is None); imports torch."""
    from opsrl.routing.policy import load_policy as _load_policy

    return _load_policy(problem, checkpoint, device)


__all__ = [
    "Result",
    "__version__",
    "evaluate",
    "generate",
    "get_problem",
    "list_problems",
    "list_solvers",
    "load_instance",
    "load_instances",
    "load_policy",
    "save_instance",
    "solve",
]
