"""Running one solver on one instance: in a worker process with a hard time limit, then costed by
the problem's ``evaluate``. The CLI's ``solve`` and the Python API go through ``run_solver``; the
benchmark runner drives many workers at once with the same ``start_worker`` / ``finish_worker`` and
``cost_solution``, so a run is limited and recorded the same way wherever it starts.
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing as mp
import os
import resource
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.metrics import gap_pct
from opsrl.core.registry import SolverSpec, get_problem, get_solver
from opsrl.core.seeding import seed_everything
from opsrl.core.types import Solution, Status


TORCH_STARTUP_S = 30.0  # a fresh worker's ``import torch`` (seconds on a busy CPU), outside the time limit


def grace_seconds(time_limit: float) -> float:
    """How long past its limit a run may take before it is killed (start-up and clean-up)."""
    return 5.0 + 0.2 * time_limit


@dataclass
class Result:
    """One run, costed by the problem's own ``evaluate``: what the CLI prints and the bench stores."""

    problem: str
    instance: str
    solver: str
    seed: int
    time_limit: float | None
    status: Status
    feasible: bool
    objective: float
    violations: list[str]
    reference: float | None
    reference_source: str
    gap_pct: float
    wall_s: float
    solution: Any
    stats: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    peak_mem_mb: float = math.nan
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        return {k: _json_safe(v) for k, v in out.items()}

    def record(self) -> dict[str, Any]:
        """A flat result record (one parquet row) in the schema of DESIGN.md."""
        from opsrl import __version__

        stats = self.stats
        return {
            "problem": self.problem, "instance": self.instance, "solver": self.solver, "seed": int(self.seed),
            "time_limit": float(self.time_limit) if self.time_limit is not None else math.nan,
            "status": str(self.status), "feasible": bool(self.feasible), "objective": float(self.objective),
            "bound": float(stats.get("bound", math.nan)),
            "reference": float(self.reference) if self.reference is not None else math.nan,
            "reference_source": self.reference_source, "gap_pct": float(self.gap_pct),
            "wall_s": float(self.wall_s), "solver_s": float(stats.get("solver_s", math.nan)),
            "nodes": float(stats.get("nodes", math.nan)), "peak_mem_mb": float(self.peak_mem_mb),
            "device": self.device, "opsrl_version": __version__,
            "params": json.dumps(self.params, sort_keys=True, default=str),
            "stats": json.dumps(_json_safe(stats), sort_keys=True, default=str),
            "solution": json.dumps(_json_safe(self.solution)), "message": self.message,
        }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def run_solver(instance: Any, solver: str, *, time_limit: float | None = 10.0, seed: int = 0,
               params: dict[str, Any] | None = None, isolate: bool = True) -> Result:
    """Solve ``instance`` with the registered ``solver`` and cost the answer with ``evaluate``.

    With ``isolate`` (the default) the solver runs in a worker process that is killed once it runs
    ``grace_seconds`` past ``time_limit``; such a run is recorded as ``timeout``.
    """
    problem = get_problem(instance.problem)
    spec = get_solver(problem.name, solver)
    if time_limit is not None and not time_limit > 0:
        raise UsageError(f"time limit must be a positive number of seconds, got {time_limit}")
    options = spec.check_params(params or {})
    problem.validate(instance)
    t0 = time.perf_counter()
    if isolate:
        sol, peak = _run_isolated(spec, instance, time_limit, seed, options)
    else:
        sol, peak = _run_here(spec, instance, time_limit, seed, options)
    wall = time.perf_counter() - t0
    if math.isnan(sol.wall_s):
        sol.wall_s = wall
    return cost_solution(problem, spec, instance, sol, time_limit, seed, options, peak)


def cost_solution(problem: Any, spec: SolverSpec, instance: Any, sol: Solution, time_limit: float | None, seed: int,
                  options: dict[str, Any], peak: float) -> Result:
    """The Result of a run: the solver's answer costed by the problem's ``evaluate``, gap to the reference."""
    status, message = sol.status, sol.message
    objective, feasible, violations = math.nan, False, []
    if sol.data is not None:
        ev = problem.evaluate(instance, sol.data)
        objective, feasible, violations = ev.objective, ev.feasible, list(ev.violations)
        if not feasible and status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIMEOUT):
            status = Status.ERROR
            message = "solver returned an infeasible solution: " + "; ".join(violations)
    ref = instance.reference
    gap = gap_pct(objective, ref.value, problem.sense) if ref is not None and feasible else math.nan
    return Result(problem=problem.name, instance=instance.name, solver=spec.name, seed=seed, time_limit=time_limit,
                  status=Status(status), feasible=feasible, objective=objective, violations=violations,
                  reference=ref.value if ref else None, reference_source=ref.source if ref else "",
                  gap_pct=gap, wall_s=sol.wall_s, solution=sol.data, stats=sol.stats, params=options,
                  message=message, peak_mem_mb=peak, device=str(sol.stats.get("device", "cpu")))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_here(spec: SolverSpec, instance: Any, time_limit: float | None, seed: int,
              options: dict[str, Any]) -> tuple[Solution, float]:
    seed_everything(seed)
    t0 = time.perf_counter()
    try:
        sol = spec.fn(instance, time_limit=time_limit, seed=seed, **options)
    except OpsrlError:
        raise
    except Exception as exc:  # a solver failure is a result, not a crash
        sol = Solution(Status.ERROR, message=f"{type(exc).__name__}: {exc}".splitlines()[0],
                       stats={"traceback": traceback.format_exc(limit=6)})
    sol.wall_s = time.perf_counter() - t0
    return sol, _peak_mb()


def _child(conn: Any, spec_key: tuple[str, str], instance: Any, time_limit: float | None, seed: int,
           options: dict[str, Any]) -> None:
    os.setpgrp()  # own process group, so a kill also reaches the solver's own children
    try:
        spec = get_solver(*spec_key)
        if spec.needs_torch:  # imported before the solver's clock starts: the limit is for solving
            import torch

            # one CPU per run, as the bench gives each worker: several threads per worker on shared
            # cores spin against each other (measured: 10 s instead of 0.13 s for one CVRP50 decode)
            torch.set_num_threads(int(os.environ.get("OPSRL_TORCH_THREADS", "1")))
        for module in spec.imports:  # likewise: a fresh worker would otherwise import them on the clock
            try:
                importlib.import_module(module)
            except ImportError:
                pass  # the solver says itself, in one line, what is missing
        result: Any = _run_here(spec, instance, time_limit, seed, options)
    except OpsrlError as exc:
        result = exc
    conn.send(result)
    conn.close()


@dataclass
class Worker:
    """A solver run in its own process: the pipe its answer comes on, the process, and when to kill it."""

    conn: Any
    proc: Any
    started: float
    deadline: float | None  # perf_counter time past which the run is killed; None: never
    time_limit: float | None

    def overdue(self, now: float | None = None) -> bool:
        """Whether the run is past its hard limit (time limit plus grace)."""
        return self.deadline is not None and (time.perf_counter() if now is None else now) >= self.deadline


def start_worker(spec: SolverSpec, instance: Any, time_limit: float | None, seed: int,
                 options: dict[str, Any]) -> Worker:
    """Fork (spawn, for torch solvers) a worker that solves ``instance``; the caller waits, then ``finish_worker``."""
    ctx = mp.get_context("spawn" if spec.needs_torch else "fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, (spec.problem, spec.name), instance, time_limit, seed, options),
                       daemon=True)
    t0 = time.perf_counter()
    try:
        proc.start()
        send.close()
        startup = TORCH_STARTUP_S if spec.needs_torch else 0.0
        deadline = None if time_limit is None else t0 + startup + time_limit + grace_seconds(time_limit)
        return Worker(recv, proc, t0, deadline, time_limit)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) while starting: the caller never sees it, so kill it here
        if proc.pid is not None:
            _kill(proc)
        raise


def finish_worker(worker: Worker) -> tuple[Solution, float]:
    """The worker's answer if it has sent one, else kill it: a ``timeout`` past its deadline, an ``error`` if it died.

    Does not wait: call it once the pipe is ready or the worker is overdue. Re-raises an OpsrlError
    the worker raised (a user error, not a solver failure).
    """
    payload, died = None, False
    try:
        if worker.conn.poll(0):
            payload = worker.conn.recv()
    except (EOFError, OSError):
        died = True
    if payload is None:
        _kill(worker.proc)
    worker.proc.join(timeout=5)
    if worker.proc.is_alive():  # answered but will not exit: do not leave it behind
        _kill(worker.proc)
        worker.proc.join(timeout=5)
    worker.conn.close()
    elapsed = time.perf_counter() - worker.started
    if isinstance(payload, OpsrlError):
        raise payload
    if payload is not None:
        return payload
    if not died and worker.time_limit is not None:
        message = f"killed after {elapsed:.1f} s: past the time limit of {worker.time_limit:g} s"
        return Solution(Status.TIMEOUT, wall_s=elapsed, message=message), math.nan
    return Solution(Status.ERROR, wall_s=elapsed,
                    message=f"solver process died with exit code {worker.proc.exitcode}"), math.nan


def _run_isolated(spec: SolverSpec, instance: Any, time_limit: float | None, seed: int,
                  options: dict[str, Any]) -> tuple[Solution, float]:
    worker = start_worker(spec, instance, time_limit, seed, options)
    try:
        worker.conn.poll(None if worker.deadline is None else max(0.0, worker.deadline - time.perf_counter()))
    except BaseException:
        kill_worker(worker)
        raise
    return finish_worker(worker)


def kill_worker(worker: Worker) -> None:
    """Kill a worker and its process group now (an interrupted benchmark or solve)."""
    _kill(worker.proc)
    worker.proc.join(timeout=5)
    worker.conn.close()


def _kill(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
