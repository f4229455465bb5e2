"""Solution plots: a valid PNG for tsp, cvrp and op; clear errors otherwise."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import opsrl
from opsrl.core.errors import UsageError
from opsrl.routing.plot import plot_solution


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("problem,solution", [
    ("tsp", [0, 3, 1, 5, 2, 4, 6, 7]),
    ("cvrp", [[1, 2, 3], [4, 5], [6, 7]]),
    ("op", [2, 5, 1]),
])
def test_plot_writes_png(tmp_path, problem, solution):
    inst = opsrl.generate(problem, 8 if problem == "tsp" else 7, seed=0)
    path = tmp_path / f"{problem}.png"
    plot_solution(problem, inst, solution, path, title="test")
    w, h = png_size(path)
    assert w > 300 and h > 300 and path.stat().st_size > 5_000


def test_problem_plot_draws_a_solved_instance(tmp_path):
    inst = opsrl.generate("cvrp", 6, seed=2)
    result = opsrl.solve(inst, "ortools", time_limit=0.3)
    opsrl.get_problem("cvrp").plot(inst, result.solution, tmp_path / "sol.png")
    assert png_size(tmp_path / "sol.png")[0] > 300


def test_plot_errors(tmp_path):
    inst = opsrl.generate("tsp", 5, seed=0)
    with pytest.raises(UsageError, match="out of range"):
        plot_solution("tsp", inst, [0, 1, 9], tmp_path / "x.png")
    with pytest.raises(UsageError, match="knapsack"):
        opsrl.get_problem("kp").plot(opsrl.generate("kp", 5, seed=0), [0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
