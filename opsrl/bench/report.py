"""A benchmark report: markdown and a self-contained HTML page (summary, plots, provenance, per-instance table).

Plots: gap vs time and performance profiles for every report; for routing problems, drawings of
selected instances' solutions (the solutions are in the results; the instances are regenerated from
their seeded names, found among built-in ones, or read from files given with ``instances``); and
learning curves or cost trajectories from training-log CSV files (``curves``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opsrl.bench.store import KEY_COLUMNS, read_results
from opsrl.bench.summary import DECIMALS, format_table, markdown_table, summarize, with_gaps
from opsrl.core.files import atomic_write_text


def write_report(results_path: Path | list[Path], out_dir: Path, *, curves: list[Path] | None = None,
                 instances: list[Any] | None = None, drawings: int = 2) -> list[Path]:
    """Write ``report.md``, ``report.html`` and the PNG plots for one or more results files; return the paths.

    Several files are merged (a run in more than one keeps its last copy). ``curves`` are
    training-log CSV files (a learning curve or a cost trajectory: numeric columns against the
    first of step, epoch, iteration, period, t). ``drawings`` routing instances per problem get
    their solutions drawn; ``instances`` are where to find instances that were read from files.
    """
    from opsrl.bench.html_report import write_html

    paths = [Path(results_path)] if isinstance(results_path, (str, Path)) else [Path(p) for p in results_path]
    out_dir = Path(out_dir)
    df, metas, repeated = _merge([read_results(p) for p in paths])
    curve_frames = [(Path(c), read_curve(Path(c))) for c in curves or []]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = with_gaps(df)
    solvers = sorted(rows["solver"].unique())
    colours = {s: _colour(i) for i, s in enumerate(solvers)}
    scatter = _gap_vs_time(rows, colours, out_dir / "gap_vs_time.png")
    profile = _performance_profile(rows, colours, out_dir / "performance_profile.png")
    drawn = draw_solutions(rows, out_dir / "solutions", instances or [], drawings)
    curve_png = _curves(curve_frames, out_dir / "curves.png") if curve_frames else None
    summary = summarize(df)
    names = ", ".join(p.name for p in paths)
    per_instance = _per_instance(rows)
    notes = _SUMMARY_NOTE + (f" {repeated} runs appeared in more than one file; the last file's copy is kept."
                             if repeated else "")
    parts = [f"# Benchmark report: {names}", "## Summary", format_table(summary), notes,
             f"![gap vs time]({scatter.name})", f"![performance profile]({profile.name})"]
    if drawn:
        parts += ["## Solutions", *(f"![{title}]({png.relative_to(out_dir)})" for png, title in drawn)]
    if curve_png is not None:
        parts += ["## Training curves and trajectories", ", ".join(str(c) for c, _ in curve_frames),
                  f"![curves]({curve_png.name})"]
    parts += ["## Provenance", *_provenances(paths, metas), "## Per instance",
              markdown_table(per_instance, _PER_INSTANCE_HEADERS, DECIMALS)]
    md = out_dir / "report.md"
    atomic_write_text(md, "\n\n".join(parts) + "\n")
    html = write_html(out_dir / "report.html", title=f"Benchmark report: {names}", summary=summary, notes=notes,
                      plots=[(scatter, "Gap vs time"), (profile, "Performance profiles")], drawings=drawn,
                      curves=[(curve_png, ", ".join(str(c) for c, _ in curve_frames))] if curve_png else [],
                      provenance=[(p.name, m) for p, m in zip(paths, metas)], per_instance=per_instance)
    return [md, html, scatter, profile, *(png for png, _ in drawn), *([curve_png] if curve_png else [])]


_SUMMARY_NOTE = ("Gap % is to the instance's reference where it has one, else to the best feasible objective any "
                 "solver found for it here (column *gap to*); mean and median are over feasible runs. *time sgm* is "
                 "the shifted geometric mean of wall time (shift 1 s) over all runs. *wins*: instances on which the "
                 "solver reached the best objective of a seed's runs (ties count for all), averaged over seeds.")
_PER_INSTANCE_HEADERS = {"mean_objective": "mean objective", "basis": "gap to", "gap_mean_pct": "mean gap %",
                         "wall_mean_s": "mean wall (s)"}
ROUTING_DRAWN = ("tsp", "cvrp", "op")
CURVE_X = ("step", "epoch", "iteration", "iter", "period", "t")


def _merge(read: list[tuple[pd.DataFrame, dict[str, Any]]]) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
    """The rows of several results files as one table (a run in several keeps its last copy), their provenance."""
    frames = [df for df, _ in read]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    keys = ["problem", *KEY_COLUMNS]
    repeated = int(df.duplicated(keys, keep="last").sum())
    if repeated:
        df = df.drop_duplicates(keys, keep="last").reset_index(drop=True)
    return df, [meta for _, meta in read], repeated


def _provenances(paths: list[Path], metas: list[dict[str, Any]]) -> list[str]:
    if len(paths) == 1:
        return [_provenance(metas[0])]
    return [f"### {p.name}\n\n{_provenance(m)}" for p, m in zip(paths, metas)]


def read_curve(path: Path) -> pd.DataFrame:
    """A training log or trajectory CSV with a header row; a missing or unreadable one is a one-line OpsrlError."""
    from opsrl.core.errors import OpsrlError

    if not path.is_file():
        raise OpsrlError(f"{path}: no such curve file")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises several kinds for a malformed file
        raise OpsrlError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    if df.empty or len(numeric) < 1:
        raise OpsrlError(f"{path}: a curve file needs a header row and at least one numeric column")
    return df


def _curves(frames: list[tuple[Path, pd.DataFrame]], path: Path) -> Path:
    """One row of panels per CSV file: each numeric column against the file's step column (or the row number)."""
    from matplotlib.figure import Figure

    layout = []
    for name, df in frames:
        x = next((c for c in CURVE_X if c in df.columns and pd.api.types.is_numeric_dtype(df[c])), None)
        ys = [c for c in df.columns if c != x and c not in CURVE_X and c != "seconds"
              and pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()][:6]
        layout.append((name, df, x, ys or [x]))
    cols = max(len(ys) for *_, ys in layout)
    fig = Figure(figsize=(4.2 * cols, 3.3 * len(layout)), layout="constrained")
    axes = fig.subplots(len(layout), cols, squeeze=False)
    for row, (name, df, x, ys) in zip(axes, layout):
        xs = df[x] if x is not None else np.arange(len(df))
        for ax, y in zip(row, ys):
            ax.plot(xs, df[y], marker="o" if len(df) <= 30 else None, ms=3)
            ax.set_xlabel(x or "row")
            ax.set_title(f"{name.stem}: {y}", fontsize="medium")
            ax.grid(True, alpha=0.3)
        for ax in row[len(ys):]:
            ax.set_visible(False)
    fig.savefig(path, dpi=100)
    return path


def find_instance(problem: str, name: str, given: dict[tuple[str, str], Any]) -> Any | None:
    """The instance a results row names: given (from files), built in, or regenerated from a seeded name."""
    import re

    from opsrl.core.registry import get_problem

    if (problem, name) in given:
        return given[(problem, name)]
    prob = get_problem(problem)
    try:
        builtin = prob.builtin(name)
    except Exception:  # a name that is no built-in instance
        builtin = None
    if builtin is not None:
        return builtin
    match = re.fullmatch(rf"{re.escape(problem)}(\d+)-s(\d+)-(\d+)", name)
    if match:
        inst = prob.generate(int(match[1]), int(match[2]), int(match[3]))
        return inst if inst.name == name else None
    return None


def draw_solutions(rows: pd.DataFrame, folder: Path, instances: list[Any], per_problem: int) -> list[tuple[Path, str]]:
    """Drawings of the seed-0 (lowest seed) feasible solutions of up to ``per_problem`` routing instances per
    problem, one per solver: those whose solvers' gaps differ most come first."""
    from opsrl.routing.plot import plot_solution

    given = {(getattr(i, "problem", ""), getattr(i, "name", "")): i for i in instances}
    out: list[tuple[Path, str]] = []
    if per_problem <= 0 or "solution" not in rows.columns:
        return out
    for problem in sorted(set(rows["problem"]) & set(ROUTING_DRAWN)):
        part = rows[(rows["problem"] == problem) & rows["feasible"].astype(bool)]
        part = part[part["seed"] == part.groupby("instance")["seed"].transform("min")]
        spread = part.groupby("instance")["gap"].agg(lambda g: (g.max() - g.min()) if g.notna().any() else -1.0)
        chosen = 0
        for inst_name in spread.sort_values(ascending=False, kind="stable").index:
            inst = find_instance(problem, inst_name, given)
            if inst is None:
                continue
            for record in part[part["instance"] == inst_name].sort_values("solver").itertuples():
                try:
                    solution = json.loads(record.solution)
                except (TypeError, ValueError):
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                png = folder / f"{_safe(inst_name)}__{_safe(record.solver)}.png"
                gap = "" if math.isnan(record.gap) else f", gap {record.gap:.2f} %"
                title = f"{inst_name} {record.solver}: {record.objective:.6g}{gap}"
                plot_solution(problem, inst, solution, png, title=title)
                out.append((png, title))
            chosen += 1
            if chosen >= per_problem:
                break
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


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
