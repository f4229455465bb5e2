"""Summaries of a results table: per solver (and problem) runs, failures, gaps, time and wins.

Gaps are taken to the instance's reference when it has one, else to the best feasible objective
any solver found for that instance in the same results (the ``gap_to`` column says which).
Mean and median gaps are over the feasible runs only; ``solved`` says how many those are.
Wins are counted per seed (on how many instances a solver reached the best objective of that
seed's runs, ties counting for all, infeasible runs never winning) and averaged over seeds, so
that a seed is one replicate of the whole comparison and a failed run cannot be averaged away.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from opsrl.core.metrics import gap_pct, shifted_geomean, wins
from opsrl.core.registry import get_problem

SUMMARY_COLUMNS = ["problem", "solver", "instances", "runs", "solved", "timeouts", "errors", "gap_mean_pct",
                   "gap_median_pct", "gap_to", "time_sgm_s", "wins"]
HEADERS = {"gap_mean_pct": "mean gap %", "gap_median_pct": "median gap %", "gap_to": "gap to",
           "time_sgm_s": "time sgm (s)"}
DECIMALS = {"gap_mean_pct": 2, "gap_median_pct": 2, "time_sgm_s": 3, "gap_pct": 2, "wall_s": 3,
            "wall_mean_s": 3}


def _senses(df: pd.DataFrame) -> dict[str, str]:
    return {p: get_problem(p).sense for p in df["problem"].unique()}


def with_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of the rows with ``gap`` (% to the reference, else to the best found) and ``gap_to`` (which)."""
    out = df.copy()
    senses = _senses(df)
    feasible = out["feasible"].astype(bool)
    objective = out["objective"].astype(float).where(feasible)
    best = {}
    for (problem, instance), values in objective.groupby([out["problem"], out["instance"]]):
        values = values.dropna()
        best[(problem, instance)] = math.nan if values.empty else (
            values.min() if senses[problem] == "min" else values.max())
    reference = out["reference"].astype(float)
    has_ref = reference.notna()
    basis = [r if ok else best[(p, i)] for r, ok, p, i in zip(reference, has_ref, out["problem"], out["instance"])]
    out["gap_to"] = ["reference" if ok else "best found" for ok in has_ref]
    out["gap"] = [gap_pct(o, b, senses[p]) for o, b, p in zip(objective, basis, out["problem"])]
    return out


def summarize(df: pd.DataFrame, shift: float = 1.0) -> pd.DataFrame:
    """One row per (problem, solver): runs, solved, timeouts, errors, mean/median gap %, shifted geomean time, wins."""
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = with_gaps(df)
    senses = _senses(df)
    win_counts: dict[tuple[str, str], float] = {}
    for problem, part in rows.groupby("problem"):
        seeds = sorted(part["seed"].unique())
        for seed in seeds:
            table: dict[str, dict[str, float]] = {}
            for inst, solver, obj, ok in zip(*(part[part["seed"] == seed][c] for c in
                                               ("instance", "solver", "objective", "feasible"))):
                table.setdefault(inst, {})[solver] = float(obj) if ok else math.nan
            for solver, count in wins(table, senses[problem]).items():
                win_counts[(problem, solver)] = win_counts.get((problem, solver), 0.0) + count / len(seeds)
    out = []
    for (problem, solver), part in rows.groupby(["problem", "solver"], sort=True):
        gaps = part["gap"].dropna()
        bases = sorted(set(part["gap_to"]))
        out.append({
            "problem": problem, "solver": solver, "instances": part["instance"].nunique(), "runs": len(part),
            "solved": int(part["feasible"].astype(bool).sum()),
            "timeouts": int((part["status"] == "timeout").sum()), "errors": int((part["status"] == "error").sum()),
            "gap_mean_pct": float(gaps.mean()) if len(gaps) else math.nan,
            "gap_median_pct": float(gaps.median()) if len(gaps) else math.nan,
            "gap_to": bases[0] if len(bases) == 1 else "mixed",
            "time_sgm_s": shifted_geomean(part["wall_s"].astype(float), shift),
            "wins": win_counts.get((problem, solver), 0.0),
        })
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def fmt(value: Any, decimals: int | None = None) -> str:
    """A table cell: NaN as '-'; a float to ``decimals`` places, else whole numbers bare and 6 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if decimals is not None:
            return f"{value:.{decimals}f}"
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def markdown_table(df: pd.DataFrame, headers: dict[str, str] | None = None,
                   decimals: dict[str, int] | None = None) -> str:
    """``df`` as a GitHub markdown table, numbers right-aligned, ``decimals`` places for the columns named."""
    headers, decimals = headers or {}, decimals or {}
    cols = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in cols]
    lines = ["| " + " | ".join(headers.get(c, c) for c in cols) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for record in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, decimals.get(c)) for c, v in zip(cols, record)) + " |")
    return "\n".join(lines)


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (the problem column only when there are several problems)."""
    if summary["problem"].nunique() <= 1:
        summary = summary.drop(columns="problem")
    return markdown_table(summary, HEADERS, DECIMALS)
