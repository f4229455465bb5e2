"""``opsrl report``: a markdown summary and plots from a results parquet file."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    results: Path = typer.Argument(..., help="Results parquet written by opsrl bench."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.md and the PNG plots."),
) -> None:
    """Write a markdown summary and PNG plots (gap vs time, performance profile)."""
    from opsrl.bench.report import write_report

    paths = write_report(results, out)
    typer.echo("\n".join(f"wrote {p}" for p in paths))
