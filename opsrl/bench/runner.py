"""The benchmark runner: every instance x solver x seed in its own worker process, J at a time.

Locally (``executor="local"``) the workers are processes of this machine; with ``executor="ray"``
they are Ray tasks on a cluster (``opsrl.bench.ray_executor``), each doing the same worker run.

Workers are the ones ``run_solver`` uses (``opsrl.core.run.start_worker`` / ``finish_worker``), so
each run has the same hard time limit (killed past ``time_limit + grace_seconds``, recorded as
``timeout``) and is costed the same way. Finished rows reach the parquet file at most ~1 s after
they finish, atomically, so an interrupted benchmark loses nothing already done and resumes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import pandas as pd

from opsrl.bench.store import provenance, read_results, write_results
from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.registry import Problem, SolverSpec, get_problem, get_solver
from opsrl.core.run import Worker, cost_solution, finish_worker, kill_worker, start_worker
from opsrl.core.types import Solution, Status

WRITE_EVERY_S = 1.0  # the most often the results file is rewritten while runs finish
Key = tuple[str, str, str, int]  # problem, instance, solver, seed
EXECUTORS = ("local", "ray")


@dataclass
class RowSink:
    """Where an executor hands finished runs: a row each, the progress callback, and the results file
    rewritten at most every ``every_s`` seconds (so an interrupted benchmark loses at most that)."""

    rows: list[dict[str, Any]]
    make_row: Callable[[Any, Solution, float], dict[str, Any]]
    save: Callable[[], None]
    on_done: Callable[[Any], None]
    every_s: float = WRITE_EVERY_S
    last_write: float = field(default_factory=time.monotonic)
    unsaved: bool = False

    def add(self, task: Any, sol: Solution, peak: float) -> None:
        self.rows.append(self.make_row(task, sol, peak))
        self.unsaved = True
        self.on_done(task)

    def save_if_due(self) -> None:
        if self.unsaved and time.monotonic() - self.last_write >= self.every_s:
            self.save()
            self.last_write, self.unsaved = time.monotonic(), False


@dataclass
class _Task:
    """One run to do: an instance, a solver for its problem, a seed and the solver's options."""

    instance: Any
    problem: Problem
    spec: SolverSpec
    seed: int
    options: dict[str, Any]

    @property
    def key(self) -> Key:
        return (self.problem.name, self.instance.name, self.spec.name, self.seed)


def run_benchmark(instances: list[Any], solvers: list[str], *, time_limit: float, seeds: list[int], jobs: int | None = 1,
                  out: Path, resume: bool = False, params: dict[str, dict[str, Any]] | None = None,
                  progress: bool = True, executor: str = "local", address: str | None = None) -> pd.DataFrame:
    """Run every instance x solver x seed (``jobs`` worker processes at a time), write them to ``out``, return all rows.

    ``executor="ray"`` runs them as Ray tasks instead (on the cluster at ``address``, "auto" or
    HOST:PORT; a new local Ray when None), at most ``jobs`` in flight (None: one per cluster CPU);
    the rows are the same.

    Everything is checked before the first run starts: solver names for each instance's problem,
    their ``params`` (solver name -> options), unique instance names, the time limit, and ``out``
    (which must not exist unless ``resume``, which skips the (instance, solver, seed) runs it holds).
    An instance its problem's ``validate`` rejects gets ``error`` rows carrying the reason.
    """
    out = Path(out)
    if executor not in EXECUTORS:
        raise UsageError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "ray":
        from opsrl.bench.ray_executor import require_ray

        require_ray()
    elif address is not None:
        raise UsageError("an address is only for the ray executor (--executor ray)")
    seeds, solvers = _unique(seeds, "seed"), _unique(solvers, "solver")
    if jobs is None and executor == "local":
        jobs = 1
    _check_settings(instances, solvers, time_limit, seeds, 1 if jobs is None else jobs)
    params = params or {}
    if unknown := sorted(set(params) - set(solvers)):
        raise UsageError(f"params given for {', '.join(unknown)}, which is not among the solvers run "
                         f"({', '.join(solvers)})")
    existing, old_meta = _existing(out, resume, time_limit)
    done: set[Key] = set()
    if existing is not None:
        done = {(str(p), str(i), str(s), int(k)) for p, i, s, k in
                zip(existing["problem"], existing["instance"], existing["solver"], existing["seed"])}

    tasks: list[_Task] = []
    for inst in instances:
        problem = get_problem(inst.problem)
        for name in solvers:
            spec = get_solver(problem.name, name)
            options = spec.check_params(params.get(name, {}))
            tasks += [_Task(inst, problem, spec, seed, options) for seed in seeds]
    tasks = [t for t in tasks if t.key not in done]

    meta = provenance(benchmark={"solvers": solvers, "seeds": seeds, "time_limit": time_limit, "jobs": jobs,
                                 "params": params, "instances": len(instances), "resumed": existing is not None,
                                 "executor": executor})
    if old_meta:
        meta["earlier_sessions"] = [*old_meta.pop("earlier_sessions", []), old_meta]
    rows: list[dict[str, Any]] = []

    def frame() -> pd.DataFrame:
        new = pd.DataFrame(rows)
        if existing is None or existing.empty:
            return new
        return pd.concat([existing, new], ignore_index=True) if rows else existing

    def save() -> None:
        if rows:  # nothing new: leave the file (or its absence) as it is
            write_results(frame(), out, meta)

    bar = _progress_bar(progress)
    try:
        with _sigterm_as_exit(), bar:
            job = bar.add_task("benchmark", total=len(tasks))
            runnable: deque[_Task] = deque()
            for task in tasks:
                invalid = _validation_error(task)
                if invalid is None:
                    runnable.append(task)
                else:
                    rows.append(_row(task, Solution(Status.ERROR, message=invalid), math.nan, time_limit))
                    bar.update(job, advance=1, description=_describe(task, rows[-1]))
            def on_done(t: _Task) -> None:
                bar.update(job, advance=1, description=_describe(t, rows[-1]), refresh=True)

            sink = RowSink(rows, lambda t, sol, peak: _row(t, sol, peak, time_limit), save, on_done)
            if executor == "ray" and runnable:
                from opsrl.bench import ray_executor

                meta["benchmark"]["cluster"] = ray_executor.drive(runnable, jobs, time_limit, sink, bar.refresh,
                                                                  address=address)
            else:
                _drive(runnable, jobs, time_limit, sink, bar.refresh)
    except BaseException:
        save()
        raise
    save()
    return frame()


def _drive(pending: deque[_Task], jobs: int, time_limit: float, sink: RowSink, tick: Callable[[], None]) -> None:
    """Keep ``jobs`` workers busy until ``pending`` is empty; kill them all if interrupted."""
    running: dict[Any, tuple[Worker, _Task]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                task = pending.popleft()
                worker = start_worker(task.spec, task.instance, time_limit, task.seed, task.options)
                running[worker.conn] = (worker, task)  # at once: an interrupt from here on kills it below
            now = time.perf_counter()
            timeout = min([0.5, *(w.deadline - now for w, _ in running.values() if w.deadline is not None)])
            ready = set(wait(list(running), max(0.0, timeout)))
            now = time.perf_counter()
            for conn in [c for c, (w, _) in running.items() if c in ready or w.overdue(now)]:
                worker, task = running.pop(conn)
                try:
                    sol, peak = finish_worker(worker)
                except OpsrlError as exc:  # the solver refused the instance: a result, not a crash
                    sol, peak = Solution(Status.ERROR, wall_s=time.perf_counter() - worker.started,
                                         message=str(exc)), math.nan
                sink.add(task, sol, peak)
            sink.save_if_due()
            tick()
    finally:
        for worker, _ in running.values():
            kill_worker(worker)


def _row(task: _Task, sol: Solution, peak: float, time_limit: float) -> dict[str, Any]:
    """One parquet row: the run's Result record plus its violations and when it finished."""
    result = cost_solution(task.problem, task.spec, task.instance, sol, time_limit, task.seed, task.options, peak)
    row = result.record()
    row["violations"] = json.dumps(result.violations)
    row["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
    return row


def _validation_error(task: _Task) -> str | None:
    """Why the problem rejects the instance (no solution can exist), or None."""
    try:
        task.problem.validate(task.instance)
    except OpsrlError as exc:
        return str(exc)
    return None


def _check_settings(instances: list[Any], solvers: list[str], time_limit: float, seeds: list[int], jobs: int) -> None:
    if not instances:
        raise UsageError("no instances to benchmark")
    if not solvers:
        raise UsageError("no solvers to benchmark")
    if not seeds:
        raise UsageError("no seeds: give at least one")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0 \
            or math.isinf(time_limit):
        raise UsageError(f"time limit must be a positive number of seconds, got {time_limit}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"jobs must be a positive integer, got {jobs}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UsageError(f"seeds must be integers, got {seed!r}")
    names: dict[str, int] = {}
    for inst in instances:
        if not isinstance(getattr(inst, "problem", None), str) or not getattr(inst, "name", ""):
            raise UsageError(f"not a named opsrl instance: {type(inst).__name__}")
        names[inst.name] = names.get(inst.name, 0) + 1
    if dups := sorted(n for n, c in names.items() if c > 1):
        raise OpsrlError(f"instance names must be unique within a benchmark; repeated: {', '.join(dups)} "
                         "(rename one, e.g. with --set name=...)")


def _existing(out: Path, resume: bool, time_limit: float) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The rows and provenance already in ``out`` when resuming; an existing file without resume is an error."""
    if not out.exists():
        return None, {}
    if not resume:
        raise OpsrlError(f"{out}: results file already exists; pass --resume (resume=True) to continue it, "
                         "or choose another output file")
    df, meta = read_results(out)
    limits = sorted({float(t) for t in df["time_limit"].dropna()}) if "time_limit" in df else []
    if limits and limits != [float(time_limit)]:
        raise OpsrlError(f"{out}: its runs used a time limit of {', '.join(f'{t:g}' for t in limits)} s; "
                         f"resume with the same time limit, not {time_limit:g} s")
    return df, meta


def _unique(items: list[Any], what: str) -> list[Any]:
    """``items`` without repeats, in order (a seed or solver given twice runs once)."""
    if isinstance(items, (str, int)):
        raise UsageError(f"{what}s must be a list, got {items!r}")
    return list(dict.fromkeys(items))


def _describe(task: _Task, row: dict[str, Any]) -> str:
    return f"{task.instance.name} {task.spec.name} seed {task.seed}: {row['status']}"


def _progress_bar(enabled: bool) -> Any:
    """A rich progress bar on stderr, refreshed by the runner's loop (no refresh thread in a forking process)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), auto_refresh=False, disable=not enabled,
                    redirect_stdout=False, redirect_stderr=False)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM (a scheduler's or ``kill``'s stop) into SystemExit, so workers are killed and rows written."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
