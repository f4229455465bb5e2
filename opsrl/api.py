"""The Python API: generate, load, save, evaluate and solve instances of any registered problem."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.registry import Problem, get_problem, problem_names, solver_names
from opsrl.core.run import Result, run_solver
from opsrl.core.types import Evaluation

__all__ = ["Result", "benchmark", "evaluate", "generate", "get_problem", "list_problems", "list_solvers",
           "load_instance", "load_instances", "save_instance", "solve"]


def list_problems() -> list[str]:
    """Names of every problem opsrl knows."""
    return problem_names()


def list_solvers(problem: str) -> list[str]:
    """Names of the solvers registered for ``problem``."""
    return solver_names(problem)


def generate(problem: str, size: int, seed: int = 0, count: int | None = None) -> Any:
    """A random instance (or ``count`` of them) from the problem's seeded generator."""
    prob = get_problem(problem)
    if size < 1:
        raise UsageError(f"size must be a positive integer, got {size}")
    if count is None:
        return prob.generate(size, seed, 0)
    if count < 1:
        raise UsageError(f"count must be a positive integer, got {count}")
    return [prob.generate(size, seed, i) for i in range(count)]


def load_instances(source: str | os.PathLike, problem: str | None = None) -> list[Any]:
    """Every instance in a file (a batch holds many), or the built-in instance of that name."""
    from opsrl.routing.formats import sniff_problem

    path = Path(source)
    if problem is None:
        problem = sniff_problem(path) if path.is_file() else None
        if problem is None:
            raise UsageError(f"{source}: cannot tell the problem from the file; pass problem= (--problem)")
    prob = get_problem(problem)
    if path.is_file():
        return prob.load(path)
    builtin = prob.builtin(str(source))
    if builtin is not None:
        return [builtin]
    raise OpsrlError(f"{source}: no such file, and not a built-in {problem} instance name")


def load_instance(source: str | os.PathLike, problem: str | None = None) -> Any:
    """The one instance in a file, or the built-in instance of that name (e.g. ``X-n101-k25``)."""
    instances = load_instances(source, problem)
    if len(instances) != 1:
        raise OpsrlError(f"{source}: holds {len(instances)} instances; use load_instances")
    return instances[0]


def save_instance(instances: Any, path: str | os.PathLike) -> None:
    """Write one instance (or a list, to ``.npz``) in the format the suffix names."""
    items = instances if isinstance(instances, list) else [instances]
    if not items:
        raise OpsrlError(f"{path}: nothing to write")
    get_problem(items[0].problem).save(items, Path(path))


def evaluate(instance: Any, solution: Any) -> Evaluation:
    """Objective and feasibility of a solution, from the problem's own ``evaluate``."""
    return get_problem(instance.problem).evaluate(instance, solution)


def solve(instance: Any, solver: str | None = None, *, time_limit: float | None = 10.0, seed: int = 0,
          params: dict[str, Any] | None = None, isolate: bool = True) -> Result:
    """Solve with a registered solver (the problem's default when None) under a time limit."""
    prob: Problem = get_problem(instance.problem)
    return run_solver(instance, solver or default_solver(prob.name), time_limit=time_limit, seed=seed,
                      params=params, isolate=isolate)


def benchmark(instances: Any, solvers: str | list[str], *, time_limit: float = 10.0, seeds: int | list[int] = 1,
              jobs: int | None = 1, out: str | os.PathLike | None = None, resume: bool = False,
              params: dict[str, dict[str, Any]] | None = None, executor: str = "local", address: str | None = None,
              progress: bool = False) -> Any:
    """Every instance x solver x seed under ``time_limit``, as a pandas DataFrame (one row per run).

    What ``opsrl bench`` does: ``seeds`` is a count (0..K-1) or a list, ``params`` maps a solver to
    its options, ``executor="ray"`` runs on a Ray cluster (``address``). The rows are also written
    to ``out`` (a parquet file, resumable) when given.

    >>> import opsrl
    >>> df = opsrl.benchmark(opsrl.generate("kp", size=10, seed=0, count=2), ["ortools", "scip"], time_limit=5)
    >>> print(df[["instance", "solver", "status"]].to_string(index=False))  # doctest: +NORMALIZE_WHITESPACE
     instance  solver  status
    kp10-s0-0 ortools optimal
    kp10-s0-0    scip optimal
    kp10-s0-1 ortools optimal
    kp10-s0-1    scip optimal
    >>> bool((df.groupby("instance")["objective"].nunique() == 1).all())  # both exact: the same optimum
    True
    """
    import tempfile

    from opsrl.bench.runner import run_benchmark

    items = list(instances) if isinstance(instances, (list, tuple)) else [instances]
    names = [solvers] if isinstance(solvers, str) else list(solvers)
    seed_list = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if out is not None:
        return run_benchmark(items, names, time_limit=time_limit, seeds=seed_list, jobs=jobs, out=Path(out),
                             resume=resume, params=params, progress=progress, executor=executor, address=address)
    with tempfile.TemporaryDirectory(prefix="opsrl-bench-") as tmp:
        return run_benchmark(items, names, time_limit=time_limit, seeds=seed_list, jobs=jobs,
                             out=Path(tmp) / "results.parquet", params=params, progress=progress,
                             executor=executor, address=address)


def default_solver(problem: str) -> str:
    """The solver ``opsrl solve`` uses when none is named."""
    prob = get_problem(problem)
    return prob.default_solver or solver_names(problem)[0]
