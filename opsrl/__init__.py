"""opsrl: a decision engine for combinatorial optimization and operations planning.

The public API, re-exported by name (the examples run as tests):

>>> import opsrl
>>> inst = opsrl.generate("cvrp", size=8, seed=0)
>>> result = opsrl.solve(inst, solver="pyvrp", time_limit=1)
>>> result.feasible, str(result.status), round(result.objective, 4)
(True, 'feasible', 3.4678)
>>> opsrl.evaluate(inst, result.solution).objective == result.objective  # every cost comes from evaluate
True

``opsrl.benchmark`` runs instances x solvers x seeds into a pandas DataFrame (``opsrl.bench`` is
the subpackage behind it), ``opsrl.load_policy`` gives a trained policy whose ``solve`` decodes a
batch at once:

>>> policy = opsrl.load_policy("kp")
>>> [r.feasible for r in policy.solve(opsrl.generate("kp", size=20, seed=0, count=2))]
[True, True]
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    import os

    from opsrl.routing.policy import BQPolicy

from opsrl.api import (  # noqa: E402
    Result,
    benchmark,
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
    """A trained BQ policy (the shipped default for ``problem`` when ``checkpoint`` is None); imports torch.

    ``policy.solve(instances, beam=..., samples=...)`` decodes a batch and returns one costed
    ``Result`` per instance; ``device`` is "cpu", "cuda" or "cuda:K".

    >>> policy = load_policy("kp", device="cpu")
    >>> result = policy.solve(generate("kp", size=20, seed=1))[0]
    >>> result.solver, result.feasible
    ('bq', True)
    """
    from opsrl.routing.policy import load_policy as _load_policy

    return _load_policy(problem, checkpoint, device)


__all__ = [
    "Result",
    "__version__",
    "benchmark",
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
