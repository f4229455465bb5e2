"""A benchmark report: a markdown file (summary, provenance, per-instance table) and two PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opsrl.bench.store import read_results
from opsrl.bench.summary import DECIMALS, format_table, markdown_table, summarize, with_gaps
from opsrl.core.files import atomic_write_text


def write_report(results_path: Path, out_dir: Path) -> list[Path]:
    """Write ``report.md``, ``gap_vs_time.png`` and ``performance_profile.png`` for a results file; return the paths."""
    results_path, out_dir = Path(results_path), Path(out_dir)
    df, meta = read_results(results_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = with_gaps(df)
    solvers = sorted(rows["solver"].unique())
    colours = {s: _colour(i) for i, s in enumerate(solvers)}
    scatter = _gap_vs_time(rows, colours, out_dir / "gap_vs_time.png")
    profile = _performance_profile(rows, colours, out_dir / "performance_profile.png")
    text = "\n\n".join([
        f"# Benchmark report: {results_path.name}",
        "## Summary",
        format_table(summarize(df)),
        "Gap % is to the instance's reference where it has one, else to the best feasible objective any "
        "solver found for it here (column *gap to*); mean and median are over feasible runs. *time sgm* is "
        "the shifted geometric mean of wall time (shift 1 s) over all runs. *wins*: instances on which the "
        "solver reached the best objective of a seed's runs (ties count for all), averaged over seeds.",
        f"![gap vs time]({scatter.name})",
        f"![performance profile]({profile.name})",
        "## Provenance",
        _provenance(meta),
        "## Per instance",
        markdown_table(_per_instance(rows), {"mean_objective": "mean objective", "basis": "gap to",
                                             "gap_mean_pct": "mean gap %", "wall_mean_s": "mean wall (s)"},
                       DECIMALS),
    ]) + "\n"
    md = out_dir / "report.md"
    atomic_write_text(md, text)
    return [md, scatter, profile]


def _colour(i: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab10"](i % 10)


def _per_instance(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, instance, solver): runs, solved, mean objective and gap, mean wall time, statuses."""
    out = []
    for (problem, instance, solver), part in rows.groupby(["problem", "instance", "solver"], sort=True):
        ok = part["feasible"].astype(bool)
        statuses = part["status"].value_counts()
        out.append({"problem": problem, "instance": instance, "solver": solver, "runs": len(part),
                    "solved": int(ok.sum()),
                    "mean_objective": float(part["objective"][ok].mean()) if ok.any() else math.nan,
                    "basis": part["gap_to"].iloc[0],
                    "gap_mean_pct": float(part["gap"].mean()) if part["gap"].notna().any() else math.nan,
                    "wall_mean_s": float(part["wall_s"].mean()),
                    "statuses": ", ".join(f"{s} x{n}" for s, n in statuses.items())})
    table = pd.DataFrame(out)
    return table.drop(columns="problem") if table["problem"].nunique() <= 1 else table


def _provenance(meta: dict[str, Any]) -> str:
    """The file's provenance as a markdown list (earlier resumed sessions summarised by host and time)."""
    if not meta:
        return "(the file holds no provenance)"
    lines = []
    for key, value in meta.items():
        if key == "earlier_sessions":
            value = "; ".join(f"{s.get('hostname', '?')} at {s.get('time_utc', '?')}" for s in value) or "none"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        lines.append(f"- **{key}**: {value}")
    return "\n".join(lines)


def _figure(n: int) -> tuple[Any, list[Any]]:
    """A figure with ``n`` side-by-side axes, drawn by Agg without touching pyplot's global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * n, 4.2), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, list(axes)


def _gap_vs_time(rows: pd.DataFrame, colours: dict[str, Any], path: Path) -> Path:
    """Scatter of wall time (log) against gap % for every feasible run, one colour per solver."""
    problems = sorted(rows["problem"].unique())
    fig, axes = _figure(len(problems))
    for ax, problem in zip(axes, problems):
        part = rows[rows["problem"] == problem]
        for solver, runs in part.groupby("solver", sort=True):
            runs = runs[runs["gap"].notna() & (runs["wall_s"] > 0)]
            ax.scatter(runs["wall_s"], runs["gap"], color=colours[solver], label=solver, alpha=0.75, s=22)
        ax.set_xscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("gap (%)")
        ax.set_title(f"{problem}: gap vs time")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    return path


def _performance_profile(rows: pd.DataFrame, colours: dict[str, Any], path: Path) -> Path:
    """Fraction of instances whose mean gap over seeds is at most tau (an instance with a failed seed never counts)."""
    problems = sorted(rows["problem"].unique())
    fig, axes = _figure(len(problems))
    for ax, problem in zip(axes, problems):
        part = rows[rows["problem"] == problem]
        n = part["instance"].nunique()
        per_solver = {}
        for solver, runs in part.groupby("solver", sort=True):
            by_inst = runs.groupby("instance")["gap"].agg(lambda g: g.mean() if g.notna().all() else math.inf)
            per_solver[solver] = np.sort(by_inst.to_numpy(dtype=float))
        finite = np.concatenate([g[np.isfinite(g)] for g in per_solver.values()] + [np.zeros(1)])
        lo, hi = min(0.0, float(finite.min())), float(finite.max())
        hi = hi + 0.05 * (hi - lo) if hi > lo else lo + 1.0
        for solver, gaps in per_solver.items():
            g = gaps[np.isfinite(gaps)]
            ax.step(np.r_[lo, g, hi], np.r_[0, np.arange(1, len(g) + 1), len(g)] / n, where="post",
                    color=colours[solver], label=solver)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("tau: gap (%)")
        ax.set_ylabel("fraction of instances with gap <= tau")
        ax.set_title(f"{problem}: performance profile")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    fig.savefig(path, dpi=110)
    return path
