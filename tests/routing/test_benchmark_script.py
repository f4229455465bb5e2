"""benchmarks/routing_neural.py end to end on a few tiny instances: every problem's rows come out
(it once broke on kp, whose instances have items, not nodes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.routing.neural_helpers import one_thread, tiny  # noqa: E402,F401

from opsrl.core.checkpoint import save_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("problem,extra", [("kp", []), ("tsp", ["--ortools-limits", "0.01", "--reference", "ortools"])])
def test_benchmark_prints_every_row(problem: str, extra: list[str], tmp_path: Path) -> None:
    policy = tiny(problem)
    ckpt = save_checkpoint(tmp_path / f"bq_{problem}.safetensors", policy.state_dict(),
                           {"problem": problem, "architecture": policy.config.to_dict(), "training": {"size": 8}})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "routing_neural.py"), "--problem", problem,
                           "--checkpoint", str(ckpt), "--count", "3", "--scales", "1", "--beam", "2", "--ls-time", "0",
                           "--reference-time", "0.2", "--jobs", "1", "--precision", "fp32", "--out", str(tmp_path / "out"),
                           *extra], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 8 | 3 |")]
    methods = [row.split("|")[3].strip() for row in rows]
    assert methods[:2] == ["bq greedy", "bq beam 2"], done.stdout
    assert any(m.startswith("ortools") for m in methods) and "precision fp32" in done.stdout
