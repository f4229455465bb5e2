"""``opsrl label``: generated instances solved near-optimally, written as a label file for imitation learning."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

# Seconds per instance when --time-limit is not given: fast-tsp, OR-Tools' knapsack solver and the
# exact solvers finish small instances well within it; HGS and PyVRP are within ~0.3 % (CVRP100) at 2 s.
DEFAULT_TIME_LIMIT = {"tsp": 1.0, "cvrp": 2.0, "op": 2.0, "kp": 1.0}


def label(
    problem: str = typer.Option(..., "--problem", "-p", help="Problem name (tsp, cvrp, op, kp)."),
    size: int = typer.Option(..., "--size", "-n", help="Customers, nodes or items per instance."),
    count: int = typer.Option(..., "--count", "-c", help="How many instances to generate and label."),
    solver: str = typer.Option(..., "--solver", "-s", help="The solver whose solutions are the labels "
                                                          "(e.g. fasttsp, hgs, pyvrp, ortools)."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", "-t",
        help="Seconds per instance (default: tsp 1, cvrp 2, op 2, kp 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator (and of the solver)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Instances solved in parallel (worker processes)."),
    out: Path = typer.Option(..., "--out", "-o", help="Label file (.npz); its runs are kept in <out>.runs.parquet."),
    resume: bool = typer.Option(False, "--resume", help="Keep the runs already done and label only the rest."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="Solver option key=value (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout (and no progress bar)."),
) -> None:
    """Generate instances and label them with a solver's solutions (for imitation learning)."""
    import numpy as np

    from opsrl.cli.common import print_json
    from opsrl.core.errors import UsageError
    from opsrl.core.registry import get_problem, get_solver, parse_assignments
    from opsrl.routing.labels import LABEL_ARRAYS, load_labels, make_labels, runs_path

    get_problem(problem)
    if problem not in LABEL_ARRAYS:
        raise UsageError(f"--problem {problem}: labels are made for {', '.join(LABEL_ARRAYS)}")
    if size < 1 or count < 1:
        raise UsageError(f"--size and --count must be positive integers, got size {size}, count {count}")
    if jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {jobs}")
    limit = DEFAULT_TIME_LIMIT[problem] if time_limit is None else time_limit
    if not limit > 0:
        raise UsageError(f"--time-limit must be a positive number of seconds, got {limit:g}")
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: a label file is an .npz batch; give a path ending in .npz")
    spec = get_solver(problem, solver)
    params = spec.check_params(parse_assignments(param, "--param"))
    make_labels(problem, size, count, seed=seed, solver=solver, time_limit=limit, jobs=jobs, out=out,
                resume=resume, params=params, progress=not as_json)
    _, instances, arrays = load_labels(out)
    objective = arrays["objective"]
    summary = {"problem": problem, "size": size, "requested": count, "labelled": len(instances), "solver": solver,
               "time_limit": limit, "seed": seed, "mean_objective": float(np.mean(objective)), "out": str(out),
               "runs": str(runs_path(out))}
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"labelled {len(instances)} of {count} {problem} instances of size {size} with {solver} "
                   f"({limit:g} s each): mean objective {summary['mean_objective']:.6g}")
        typer.echo(f"wrote {out} (runs in {summary['runs']})")
