"""The report: markdown with summary, provenance and per-instance tables, and two valid PNG plots."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pandas as pd
import pytest

import opsrl
from opsrl.bench import run_benchmark, write_report, write_results
from opsrl.bench.store import provenance
from opsrl.core.errors import OpsrlError


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, checking its signature and header chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _hand_made(path: Path) -> None:
    rows = []
    for problem, sense_best in (("tsp", 10.0), ("kp", 100.0)):
        for inst in ("a", "b", "c"):
            for solver, delta, wall in (("fast", 1.0, 0.1), ("slow", 0.0, 2.0)):
                for seed in (0, 1):
                    ok = not (solver == "fast" and inst == "c" and seed == 1)
                    obj = sense_best + (delta if problem == "tsp" else -delta) + seed if ok else math.nan
                    rows.append({"problem": problem, "instance": f"{problem}-{inst}", "solver": solver,
                                 "seed": seed, "time_limit": 2.0, "status": "feasible" if ok else "timeout",
                                 "feasible": ok, "objective": obj, "reference": sense_best if inst == "a" else math.nan,
                                 "gap_pct": math.nan, "wall_s": wall * (1 + seed)})
    write_results(pd.DataFrame(rows), path, provenance(note="hand-made"))


def test_report_from_hand_made_results(tmp_path):
    results = tmp_path / "res.parquet"
    _hand_made(results)
    paths = write_report(results, tmp_path / "report")
    md, html, *pngs = paths
    assert md.name == "report.md" and html.name == "report.html" and [p.suffix for p in pngs] == [".png", ".png"]
    assert all(p.exists() for p in paths)
    for png in pngs:
        w, h = png_size(png)
        assert w > 800 and h > 300 and png.stat().st_size > 10_000  # two panels, one per problem
    text = md.read_text()
    assert "## Summary" in text and "| problem | solver | instances |" in text
    assert "## Provenance" in text and "hand-made" in text and opsrl.__version__ in text
    assert "| tsp | tsp-c | fast | 2 | 1 |" in text  # per-instance table: 2 runs, 1 solved
    for png in pngs:
        assert f"]({png.name})" in text


def test_report_from_a_real_benchmark(tmp_path):
    results = tmp_path / "res.parquet"
    run_benchmark(opsrl.generate("kp", 10, seed=0, count=2), ["ortools"], time_limit=1, seeds=[0],
                  out=results, progress=False)
    md, html, *pngs = write_report(results, tmp_path)
    assert "kp10-s0-1" in md.read_text() and "kp10-s0-1" in html.read_text()
    assert all(png_size(p)[0] > 300 for p in pngs)


def test_report_of_missing_file_is_an_error(tmp_path):
    with pytest.raises(OpsrlError, match="nothere.parquet"):
        write_report(tmp_path / "nothere.parquet", tmp_path)
