"""``opsrl bench``: every instance x solver x seed under a time limit, into one parquet file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def bench(
    ctx: typer.Context,
    problem: str = typer.Option(..., "--problem", "-p", help="Problem name."),
    instances: list[str] = typer.Option(..., "--instances", "-i",
                                        help="Instance files, folders, .npz batches or built-in names (several may follow)."),
    solvers: str = typer.Option(..., "--solvers", "-s", help="Comma-separated solver names."),
    time_limit: float = typer.Option(10.0, "--time-limit", "-t", help="Time limit per run in seconds."),
    seeds: int = typer.Option(1, "--seeds", help="Number of seeds per instance and solver (0..K-1)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j",
                                       help="Runs in parallel (default: 1 locally, one per cluster CPU with Ray)."),
    out: Path = typer.Option(..., "--out", "-o", help="Results parquet file."),
    resume: bool = typer.Option(False, "--resume", help="Keep the runs already in --out and do only the rest."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="Solver option solver.key=value (repeatable)."),
    shift: float = typer.Option(1.0, "--shift", help="Shift of the geometric mean of times."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or ray (Ray tasks on a cluster)."),
    address: Optional[str] = typer.Option(None, "--address",
                                          help="Ray cluster to use: auto or HOST:PORT (default: a new local one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Benchmark solvers on instances; prints a summary table per solver."""
    from opsrl.bench.runner import run_benchmark
    from opsrl.bench.summary import format_table, summarize
    from opsrl.cli.common import expand_instance_paths, print_json
    from opsrl.core.errors import UsageError
    from opsrl.core.registry import get_problem, get_solver, parse_assignments

    extra = [a for a in ctx.args]
    if any(a.startswith("-") for a in extra):
        raise UsageError(f"unknown option {next(a for a in extra if a.startswith('-'))}")
    if time_limit <= 0:
        raise UsageError(f"--time-limit must be a positive number of seconds, got {time_limit:g}")
    if seeds < 1 or (jobs is not None and jobs < 1):
        raise UsageError(f"--seeds and --jobs must be positive integers, got {seeds} and {jobs}")
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor {executor}: expected local or ray")
    if address is not None and executor != "ray":
        raise UsageError("--address: only with --executor ray")
    if executor == "ray":
        from opsrl.bench.ray_executor import require_ray

        require_ray()
    get_problem(problem)
    names = [s.strip() for s in solvers.split(",") if s.strip()]
    if not names:
        raise UsageError("--solvers: expected a comma-separated list of solver names")
    specs = {n: get_solver(problem, n) for n in names}
    params: dict[str, dict] = {}
    for key, value in parse_assignments(param, "--param").items():
        solver, dot, opt = key.partition(".")
        if not dot or solver not in specs:
            raise UsageError(f"--param {key}={value}: expected solver.key=value with solver one of {', '.join(names)}")
        params.setdefault(solver, {})[opt] = value
    params = {s: specs[s].check_params(p) for s, p in params.items()}
    insts = expand_instance_paths(problem, [*instances, *extra])
    df = run_benchmark(insts, names, time_limit=time_limit, seeds=list(range(seeds)), jobs=jobs, out=out,
                       resume=resume, params=params, progress=not as_json, executor=executor, address=address)
    summary = summarize(df, shift=shift)
    if as_json:
        print_json({"results": str(out), "summary": summary.to_dict(orient="records")})
    else:
        typer.echo(format_table(summary))
        typer.echo(f"\n{len(df)} runs in {out}")
