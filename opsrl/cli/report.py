"""``opsrl report``: markdown and a self-contained HTML page with plots from one or more results parquet files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report(
    results: list[Path] = typer.Argument(..., help="Results parquet files written by opsrl bench (merged)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.md, report.html and the PNG plots."),
    curves: Optional[list[Path]] = typer.Option(None, "--curves",
                                                help="Training-log or cost-trajectory CSV to plot (repeatable)."),
    instances: Optional[list[str]] = typer.Option(None, "--instances", "-i",
                                                  help="Instance files the runs used, for the solution drawings "
                                                       "(generated and built-in instances are found by name)."),
    problem: Optional[str] = typer.Option(None, "--problem", "-p", help="Problem of the --instances files."),
    drawings: int = typer.Option(2, "--drawings", help="Routing instances per problem whose solutions are drawn."),
) -> None:
    """Write report.md, a self-contained report.html and PNG plots (gap vs time, performance profile, solutions)."""
    from opsrl.bench.report import write_report
    from opsrl.core.errors import UsageError

    if drawings < 0:
        raise UsageError(f"--drawings must be 0 or more, got {drawings}")
    insts: list = []
    if instances:
        if problem is None:
            raise UsageError("--instances: give the problem with --problem")
        from opsrl.cli.common import expand_instance_paths

        insts = expand_instance_paths(problem, list(instances))
    paths = write_report(list(results), out, curves=list(curves or []), instances=insts, drawings=drawings)
    typer.echo("\n".join(f"wrote {p}" for p in paths))
