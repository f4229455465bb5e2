"""The benchmark runner: one row per run, hard time limits, resume, interrupts, validation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import opsrl
from opsrl.bench import read_results, run_benchmark
from opsrl.core import registry
from opsrl.core import run as core_run
from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.instances import KPInstance

ROOT = Path(__file__).resolve().parents[2]


def _pid_gone(pid: int, wait_s: float = 3.0) -> bool:
    """Whether process ``pid`` has ended (a zombie awaiting its reaper counts as ended)."""
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def test_solvers(monkeypatch):
    """Throwaway kp solvers (in a copy of the registry): one that sleeps, one that naps, two that fail."""
    monkeypatch.setattr(registry, "_SOLVERS", dict(registry._SOLVERS))

    @register_solver(["kp"], "test-sleep", "sleeps 60 s, with a grandchild process")
    def sleep(instance, *, time_limit, seed, pidfile: str = ""):
        child = subprocess.Popen(["sleep", "60"])
        if pidfile:
            Path(pidfile).write_text(str(child.pid))
        time.sleep(60)
        return Solution(Status.FEASIBLE, [])

    @register_solver(["kp"], "test-nap", "naps, then packs nothing")
    def nap(instance, *, time_limit, seed, nap: float = 0.3):
        t0 = time.time()
        time.sleep(nap)
        return Solution(Status.FEASIBLE, [], {"t0": t0, "t1": time.time()})

    @register_solver(["kp"], "test-raise", "raises")
    def boom(instance, *, time_limit, seed):
        raise ValueError("boom")

    @register_solver(["kp"], "test-exit", "dies")
    def die(instance, *, time_limit, seed):
        os._exit(3)


def _kp(count: int = 2, size: int = 12) -> list:
    return opsrl.generate("kp", size, seed=0, count=count)


def test_one_row_per_run_with_schema_and_provenance(tmp_path):
    out = tmp_path / "res.parquet"
    insts = _kp(2)
    df = run_benchmark(insts, ["ortools"], time_limit=1, seeds=[0, 1], jobs=2, out=out, progress=False)
    stored, meta = read_results(out)
    assert len(stored) == len(df) == 4
    keys = set(zip(stored["instance"], stored["solver"], stored["seed"]))
    assert keys == {(i.name, "ortools", s) for i in insts for s in (0, 1)}
    record_cols = set(opsrl.solve(insts[0], "ortools", time_limit=1, isolate=False).record())
    assert record_cols | {"violations", "finished_at"} <= set(stored.columns)
    assert (stored["status"] == "optimal").all() and stored["feasible"].all()
    by_name = {i.name: i for i in insts}
    for name, sol, obj in zip(stored["instance"], stored["solution"], stored["objective"]):
        assert opsrl.evaluate(by_name[name], json.loads(sol)).objective == obj  # costed by evaluate
    assert meta["opsrl_version"] == opsrl.__version__ and meta["python"] and meta["hostname"]
    assert meta["cpu_count"] >= 1 and "ortools" in meta["libraries"] and meta["time_utc"]
    assert meta["benchmark"]["seeds"] == [0, 1] and meta["benchmark"]["time_limit"] == 1
    assert not out.with_name(out.name + ".partial").exists()


def test_routing_solvers_side_by_side(tmp_path):
    available = opsrl.list_solvers("cvrp")
    solvers = [s for s in ("ortools", "pyvrp") if s in available]
    insts = opsrl.generate("cvrp", 6, seed=1, count=1)
    df = run_benchmark(insts, solvers, time_limit=0.3, seeds=[0], jobs=2, out=tmp_path / "r.parquet",
                       progress=False)
    assert sorted(df["solver"]) == sorted(solvers)
    assert df["feasible"].all() and df["status"].isin(["optimal", "feasible"]).all()


def test_resume_runs_only_missing(tmp_path):
    out = tmp_path / "res.parquet"
    insts = _kp(2)
    first = run_benchmark(insts, ["ortools"], time_limit=1, seeds=[0], out=out, progress=False)
    stamps = dict(zip(first["instance"], first["finished_at"]))
    df = run_benchmark(insts, ["ortools"], time_limit=1, seeds=[0, 1], out=out, resume=True, progress=False)
    stored, meta = read_results(out)
    assert len(df) == len(stored) == 4
    again = stored[stored["seed"] == 0]
    assert dict(zip(again["instance"], again["finished_at"])) == stamps  # seed 0 not rerun
    assert (stored[stored["seed"] == 1]["finished_at"] > max(stamps.values())).all()
    assert len(meta["earlier_sessions"]) == 1 and meta["benchmark"]["resumed"]
    with pytest.raises(OpsrlError, match="time limit"):
        run_benchmark(insts, ["ortools"], time_limit=2, seeds=[0, 1, 2], out=out, resume=True, progress=False)


def test_existing_output_without_resume_is_an_error(tmp_path):
    out = tmp_path / "res.parquet"
    run_benchmark(_kp(1), ["ortools"], time_limit=1, seeds=[0], out=out, progress=False)
    before = out.read_bytes()
    with pytest.raises(OpsrlError, match="--resume") as exc:
        run_benchmark(_kp(1), ["ortools"], time_limit=1, seeds=[1], out=out, progress=False)
    assert str(out) in str(exc.value)
    assert out.read_bytes() == before


def test_overlong_run_is_killed_as_timeout_with_its_children(tmp_path, test_solvers, monkeypatch):
    monkeypatch.setattr(core_run, "grace_seconds", lambda limit: 0.5)
    pidfile = tmp_path / "grandchild.pid"
    t0 = time.perf_counter()
    df = run_benchmark(_kp(1), ["test-sleep"], time_limit=0.2, seeds=[0], out=tmp_path / "r.parquet",
                       params={"test-sleep": {"pidfile": str(pidfile)}}, progress=False)
    elapsed = time.perf_counter() - t0
    row = df.iloc[0]
    assert row["status"] == "timeout" and not row["feasible"] and "killed" in row["message"]
    assert 0.6 <= row["wall_s"] < 3 and elapsed < 5
    assert _pid_gone(int(pidfile.read_text()))  # the solver's own child went with it


def test_run_solver_shares_the_kill(tmp_path, test_solvers, monkeypatch):
    monkeypatch.setattr(core_run, "grace_seconds", lambda limit: 0.5)
    result = opsrl.solve(_kp(1)[0], "test-sleep", time_limit=0.2)
    assert result.status == Status.TIMEOUT and result.wall_s < 3


def test_jobs_run_in_parallel(tmp_path, test_solvers):
    df = run_benchmark(_kp(2), ["test-nap"], time_limit=5, seeds=[0], jobs=2, out=tmp_path / "r.parquet",
                       progress=False)
    (a0, a1), (b0, b1) = [(s["t0"], s["t1"]) for s in map(json.loads, df["stats"])]
    assert max(a0, b0) < min(a1, b1)  # the two naps overlapped


def test_solver_failures_are_rows(tmp_path, test_solvers):
    df = run_benchmark(_kp(1), ["test-raise", "test-exit", "ortools"], time_limit=2, seeds=[0],
                       out=tmp_path / "r.parquet", progress=False)
    by = dict(zip(df["solver"], zip(df["status"], df["message"])))
    assert by["test-raise"] == ("error", "ValueError: boom")
    assert by["test-exit"][0] == "error" and "exit code 3" in by["test-exit"][1]
    assert by["ortools"][0] == "optimal"


def test_rejected_instance_is_recorded_not_fatal(tmp_path):
    bad = KPInstance(values=[1, 2], weights=[1, 1], capacity=-1.0, name="bad")
    df = run_benchmark([bad, *_kp(1)], ["ortools"], time_limit=1, seeds=[0, 1], out=tmp_path / "r.parquet",
                       progress=False)
    rows = df[df["instance"] == "bad"]
    assert len(rows) == 2 and (rows["status"] == "error").all() and rows["message"].str.contains("capacity").all()
    assert (df[df["instance"] != "bad"]["status"] == "optimal").all()


def test_everything_checked_before_starting(tmp_path):
    out = tmp_path / "r.parquet"
    with pytest.raises(UsageError, match="no-such"):
        run_benchmark(_kp(1), ["ortools", "no-such"], time_limit=1, seeds=[0], out=out, progress=False)
    with pytest.raises(UsageError, match="depth"):
        run_benchmark(_kp(1), ["ortools"], time_limit=1, seeds=[0], out=out, progress=False,
                      params={"ortools": {"depth": "3"}})
    twins = [opsrl.generate("kp", 5, seed=0), opsrl.generate("kp", 5, seed=0)]
    with pytest.raises(OpsrlError, match="unique.*kp5-s0-0"):
        run_benchmark(twins, ["ortools"], time_limit=1, seeds=[0], out=out, progress=False)
    with pytest.raises(UsageError, match="time limit"):
        run_benchmark(_kp(1), ["ortools"], time_limit=0, seeds=[0], out=out, progress=False)
    assert not out.exists()


def test_unreadable_results_file_is_one_line_error(tmp_path):
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    for path in (junk, tmp_path / "missing.parquet"):
        with pytest.raises(OpsrlError) as exc:
            read_results(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)


SCRIPT = """
import sys, time, subprocess
from pathlib import Path
import opsrl
from opsrl.bench import run_benchmark
from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status

@register_solver(["kp"], "slowpoke", "quick on 'quick' instances, else sleeps")
def slowpoke(instance, *, time_limit, seed):
    if instance.name.startswith("slow"):
        child = subprocess.Popen(["sleep", "60"])
        Path(sys.argv[2]).write_text(str(child.pid))
        time.sleep(60)
    return Solution(Status.FEASIBLE, [], {"torch_loaded": "torch" in sys.modules})

insts = [opsrl.generate("kp", 5, seed=s) for s in range(2)]
insts.append(opsrl.get_problem("kp").override(opsrl.generate("kp", 5, seed=9), "name", "slow"))
run_benchmark(insts, ["slowpoke"], time_limit=100, seeds=[0], jobs=1, out=Path(sys.argv[1]), progress=False)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_rows_and_kills_workers(tmp_path, sig):
    script, out, pidfile = tmp_path / "bench.py", tmp_path / "r.parquet", tmp_path / "pid"
    script.write_text(textwrap.dedent(SCRIPT))
    # SIGINT at its default, as at a terminal: a test run started in the background (`cmd &` without job
    # control) ignores SIGINT, and a child would inherit that and never see the Ctrl-C
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(pidfile)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        end = time.monotonic() + 60
        while not pidfile.exists() or not pidfile.read_text():  # the slow run (third) has started
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert (b"KeyboardInterrupt" in err) if sig == signal.SIGINT else proc.returncode == 128 + sig
    df, _ = read_results(out)
    assert sorted(df["instance"]) == ["kp5-s0-0", "kp5-s1-0"]  # the two finished runs, not the killed one
    assert not any(json.loads(s)["torch_loaded"] for s in df["stats"])  # workers never imported torch
    assert _pid_gone(int(pidfile.read_text()))
