"""Running one solver on one instance: in a worker process with a hard time limit, then costed by
the problem's ``evaluate``. The CLI's ``solve``, the Python API and the benchmark runner all go
through ``run_solver``, so a run is recorded the same way wherever it starts.
"""

from __future__ import annotations

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
    return _cost(problem, spec, instance, sol, time_limit, seed, options, peak)


def _cost(problem: Any, spec: SolverSpec, instance: Any, sol: Solution, time_limit: float | None, seed: int,
          options: dict[str, Any], peak: float) -> Result:
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
        result: Any = _run_here(spec, instance, time_limit, seed, options)
    except OpsrlError as exc:
        result = exc
    conn.send(result)
    conn.close()


def _run_isolated(spec: SolverSpec, instance: Any, time_limit: float | None, seed: int,
                  options: dict[str, Any]) -> tuple[Solution, float]:
    ctx = mp.get_context("spawn" if spec.needs_torch else "fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, (spec.problem, spec.name), instance, time_limit, seed, options),
                       daemon=True)
    t0 = time.perf_counter()
    proc.start()
    send.close()
    deadline = None if time_limit is None else time_limit + grace_seconds(time_limit)
    try:
        ready = recv.poll(deadline)
        payload = recv.recv() if ready else None
    except EOFError:
        payload, ready = None, True
    finally:
        if proc.is_alive() and payload is None:
            _kill(proc)
        proc.join(timeout=5)
    elapsed = time.perf_counter() - t0
    if isinstance(payload, OpsrlError):
        raise payload
    if payload is not None:
        return payload
    if not ready:
        return Solution(Status.TIMEOUT, wall_s=elapsed,
                        message=f"killed after {elapsed:.1f} s: past the time limit of {time_limit:g} s"), math.nan
    return Solution(Status.ERROR, wall_s=elapsed,
                    message=f"solver process died with exit code {proc.exitcode}"), math.nan


def _kill(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
