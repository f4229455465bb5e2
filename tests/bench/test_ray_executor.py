"""The Ray executor: a local Ray cluster gives the same result rows as the local process pool, and resumes."""

from __future__ import annotations

import math

import pytest

import opsrl
from opsrl.bench import read_results, run_benchmark

COMPARED = ["problem", "instance", "solver", "seed", "status", "feasible", "objective", "reference", "gap_pct",
            "solution", "params", "message"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'opsrl[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def _frame(df):
    return df[COMPARED].sort_values(["instance", "solver", "seed"]).reset_index(drop=True)


def test_ray_and_local_executors_give_identical_rows(ray_cluster, tmp_path) -> None:
    insts = opsrl.generate("kp", 12, seed=3, count=3)
    kwargs = dict(time_limit=10, seeds=[0], progress=False)
    local = run_benchmark(insts, ["ortools", "scip"], jobs=2, out=tmp_path / "local.parquet", **kwargs)
    ray_rows = run_benchmark(insts, ["ortools", "scip"], jobs=2, out=tmp_path / "ray.parquet", executor="ray",
                             **kwargs)
    assert len(ray_rows) == 6 and set(ray_rows["status"]) == {"optimal"}
    assert list(ray_rows.columns) == list(local.columns)
    assert _frame(ray_rows).equals(_frame(local))
    df, meta = read_results(tmp_path / "ray.parquet")
    assert _frame(df).equals(_frame(local))
    assert meta["benchmark"]["executor"] == "ray" and meta["benchmark"]["cluster"]["cluster_cpus"] == 2
    assert all(math.isfinite(w) and w > 0 for w in df["wall_s"])


def test_ray_executor_resumes_like_the_local_one(ray_cluster, tmp_path) -> None:
    insts = opsrl.generate("kp", 10, seed=5, count=2)
    out = tmp_path / "r.parquet"
    run_benchmark(insts, ["ortools"], time_limit=10, seeds=[0], out=out, executor="ray", progress=False)
    both = run_benchmark(insts, ["ortools", "scip"], time_limit=10, seeds=[0], out=out, executor="ray",
                         resume=True, progress=False)
    assert len(both) == 4 and both.groupby("instance")["objective"].nunique().eq(1).all()
    first = read_results(out)[0]
    assert sorted(first["solver"]) == ["ortools", "ortools", "scip", "scip"]


def _die() -> None:
    import os

    os._exit(1)


def test_a_lost_ray_worker_becomes_an_error_row_not_a_missing_one(ray_cluster) -> None:
    from opsrl.bench.ray_executor import _answer
    from opsrl.core.types import Status

    ref = ray_cluster.remote(max_retries=0)(_die).remote()
    ready, _ = ray_cluster.wait([ref], timeout=20)
    sol, _ = _answer(ray_cluster, ref, bool(ready), 1.0)
    assert sol.status == Status.ERROR and "ray task failed" in sol.message and "\n" not in sol.message


def test_executor_ray_without_ray_says_how_to_install_it(cli, monkeypatch, tmp_path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    code, out, err = cli("bench", "-p", "kp", "-i", "x.npz", "-s", "ortools", "-o", tmp_path / "r.parquet",
                         "--executor", "ray")
    assert code == 2 and "pip install 'opsrl[ray]'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("bench", "-p", "kp", "-i", "x.npz", "-s", "ortools", "-o", tmp_path / "r.parquet",
                       "--address", "auto")
    assert code == 2 and "--executor ray" in err
