"""opsrl: a decision engine for combinatorial optimization and operations planning.

The public API, re-exported by name::

    from opsrl import generate, load_instance, solve, evaluate

    inst = generate("cvrp", size=50, seed=0)
    result = solve(inst, solver="pyvrp", time_limit=5)
    print(result.objective, result.feasible, result.gap_pct)
"""

__version__ = "0.1.0"

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
    "save_instance",
    "solve",
]
