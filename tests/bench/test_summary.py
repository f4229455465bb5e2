"""Summary metrics on hand-made results, computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from opsrl.bench.summary import format_table, summarize, with_gaps

NAN = math.nan


def _rows(spec: list[tuple]) -> pd.DataFrame:
    cols = ["problem", "instance", "solver", "seed", "status", "feasible", "objective", "reference", "wall_s"]
    return pd.DataFrame(spec, columns=cols)


# tsp (min). Instance A has reference 100; instance B has none (best found: 40).
TSP = _rows([
    ("tsp", "A", "s1", 0, "feasible", True, 110.0, 100.0, 1.0),
    ("tsp", "A", "s1", 1, "feasible", True, 105.0, 100.0, 3.0),
    ("tsp", "A", "s2", 0, "optimal", True, 100.0, 100.0, 0.0),
    ("tsp", "A", "s2", 1, "timeout", False, NAN, 100.0, 8.0),
    ("tsp", "B", "s1", 0, "feasible", True, 50.0, NAN, 1.0),
    ("tsp", "B", "s1", 1, "feasible", True, 50.0, NAN, 3.0),
    ("tsp", "B", "s2", 0, "feasible", True, 40.0, NAN, 1.0),
    ("tsp", "B", "s2", 1, "feasible", True, 45.0, NAN, 3.0),
])


def test_gaps_to_reference_else_best_found():
    rows = with_gaps(TSP)
    assert rows["gap"].tolist()[:3] == pytest.approx([10.0, 5.0, 0.0])
    assert math.isnan(rows["gap"].iloc[3])  # no feasible solution, no gap
    assert rows["gap"].tolist()[4:] == pytest.approx([25.0, 25.0, 0.0, 12.5])
    assert rows["gap_to"].tolist() == ["reference"] * 4 + ["best found"] * 4


def test_summary_by_hand():
    s = summarize(TSP, shift=1.0).set_index("solver")
    assert s.loc["s1", "runs"] == 4 and s.loc["s1", "solved"] == 4 and s.loc["s1", "instances"] == 2
    assert s.loc["s2", "solved"] == 3 and s.loc["s2", "timeouts"] == 1 and s.loc["s2", "errors"] == 0
    assert s.loc["s1", "gap_mean_pct"] == pytest.approx(16.25)
    assert s.loc["s1", "gap_median_pct"] == pytest.approx(17.5)
    assert s.loc["s2", "gap_mean_pct"] == pytest.approx(12.5 / 3)
    assert s.loc["s2", "gap_median_pct"] == pytest.approx(0.0)
    assert s.loc["s1", "gap_to"] == "mixed"
    # shifted geometric means: (2*4*2*4)^(1/4) - 1 and (1*9*2*4)^(1/4) - 1
    assert s.loc["s1", "time_sgm_s"] == pytest.approx(math.sqrt(8) - 1)
    assert s.loc["s2", "time_sgm_s"] == pytest.approx(72 ** 0.25 - 1)
    # seed 0: s2 best on A and B; seed 1: s1 on A (s2 timed out), s2 on B -> averaged over seeds
    assert s.loc["s1", "wins"] == pytest.approx(0.5) and s.loc["s2", "wins"] == pytest.approx(1.5)


def test_maximisation_and_several_problems():
    kp = _rows([
        ("kp", "K", "s1", 0, "optimal", True, 90.0, NAN, 0.5),
        ("kp", "K", "s2", 0, "feasible", True, 100.0, NAN, 0.5),
    ])
    s = summarize(pd.concat([TSP, kp], ignore_index=True))
    k = s[s["problem"] == "kp"].set_index("solver")
    assert k.loc["s1", "gap_mean_pct"] == pytest.approx(10.0) and k.loc["s2", "gap_mean_pct"] == 0.0
    assert k.loc["s2", "wins"] == 1 and k.loc["s1", "wins"] == 0 and k.loc["s1", "gap_to"] == "best found"
    assert len(s) == 4 and set(s["problem"]) == {"tsp", "kp"}
    table = format_table(s)
    lines = table.splitlines()
    assert lines[0].startswith("| problem | solver |") and len(lines) == 2 + 4
    assert "| kp | s1 | 1 | 1 | 1 | 0 | 0 | 10.00 | 10.00 | best found |" in table


def test_format_table_single_problem_drops_problem_column():
    table = format_table(summarize(TSP))
    assert table.splitlines()[0].startswith("| solver | instances | runs |")
    assert "| s1 | 2 | 4 | 4 | 0 | 0 | 16.25 | 17.50 | mixed | 1.828 | 0.5 |" in table
    assert "| s2 | 2 | 4 | 3 | 1 | 0 | 4.17 | 0.00 | mixed | 1.913 | 1.5 |" in table
