"""The benchmark runner's Ray executor: the same runs as the local process pool, as Ray tasks on a cluster.

Each run is one Ray task (one CPU; one GPU for a neural solver when the cluster has GPUs) that does
exactly what a local run does: ``start_worker`` forks the solver into its own process with the same
hard time limit, and the task hands back the solver's answer. The driver costs it with ``evaluate``
(the same ``_row`` as the local pool), so both executors write the same parquet rows. A task whose
Ray worker or node is lost is retried by Ray (``max_retries``); once the retries are spent it becomes
an ``error`` row naming the loss, never a missing row. Ray is an optional extra: ``pip install opsrl[ray]``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.run import finish_worker, grace_seconds, start_worker
from opsrl.core.types import Solution, Status

INSTALL_HINT = "--executor ray needs Ray: pip install 'opsrl[ray]' (or pip install 'ray>=2.9')"
MAX_RETRIES = 2  # Ray re-runs a task whose worker process or node died this many times
LOST_AFTER_S = 300.0  # extra slack past time limit + grace before an unanswered task counts as lost


def require_ray() -> Any:
    """The ``ray`` module, or a one-line usage error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def connect(address: str | None) -> tuple[Any, bool]:
    """Ray, connected to ``address`` ("auto", "HOST:PORT", "ray://...") or a new local cluster when None.

    An already initialised Ray (e.g. ``ray.init`` in the caller's own code) is used as it is. Returns
    the module and whether this call started the connection (then the caller shuts it down).
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    if address is None:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a new local cluster"
        raise OpsrlError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0]}") from None
    return ray, True


def _solve(spec_key: tuple[str, str], instance: Any, time_limit: float, seed: int,
           options: dict[str, Any]) -> tuple[str, Any, float]:
    """The body of one Ray task: a worker process with the hard time limit, exactly as the local pool runs it.

    Returns ("ok", Solution, peak MB) or ("refused", message, seconds) when the solver raised an
    OpsrlError (the local pool records those as error rows too).
    """
    from opsrl.core.registry import get_solver

    spec = get_solver(*spec_key)
    worker = start_worker(spec, instance, time_limit, seed, options)
    try:
        worker.conn.poll(max(0.0, worker.deadline - time.perf_counter()) if worker.deadline else None)
        sol, peak = finish_worker(worker)
    except OpsrlError as exc:
        return "refused", str(exc), time.perf_counter() - worker.started
    return "ok", sol, peak


def drive(pending: deque[Any], jobs: int | None, time_limit: float, sink: Any, tick: Callable[[], None], *,
          address: str | None = None) -> dict[str, Any]:
    """Run every task in ``pending`` as a Ray task, at most ``jobs`` in flight (None: the cluster's CPUs).

    Finished runs go to ``sink`` (the runner's ``RowSink``) as tasks finish, as in the local pool.
    Returns a description of the cluster for the results' provenance.
    """
    ray, started = connect(address)
    try:
        resources = ray.cluster_resources()
        cpus = max(1, int(resources.get("CPU", 1)))
        gpus = float(resources.get("GPU", 0.0))
        window = jobs if jobs is not None else cpus
        remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_solve)
        running: dict[Any, tuple[Any, float]] = {}  # ref -> (task, submitted at)
        lost_after = time_limit + grace_seconds(time_limit) + LOST_AFTER_S
        try:
            while pending or running:
                while pending and len(running) < window:
                    task = pending.popleft()
                    neural = task.spec.needs_torch and gpus > 0
                    ref = remote.options(num_cpus=1, num_gpus=1 if neural else 0).remote(
                        (task.spec.problem, task.spec.name), task.instance, time_limit, task.seed, task.options)
                    running[ref] = (task, time.perf_counter())
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                now = time.perf_counter()
                for ref in [r for r, (_, t0) in running.items() if r in ready or now - t0 > lost_after]:
                    task, t0 = running.pop(ref)
                    sink.add(task, *_answer(ray, ref, ref in ready, now - t0))
                sink.save_if_due()
                tick()
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
        return {"executor": "ray", "address": address, "cluster_cpus": cpus, "cluster_gpus": gpus,
                "nodes": len([n for n in ray.nodes() if n.get("Alive")])}
    finally:
        if started:
            ray.shutdown()


def _answer(ray: Any, ref: Any, ready: bool, waited: float) -> tuple[Solution, float]:
    """The solver's answer from a finished task; an ``error`` Solution when Ray lost it or never answered."""
    if not ready:
        ray.cancel(ref, force=True)
        return Solution(Status.ERROR, wall_s=waited,
                        message=f"ray task lost: no answer after {waited:.0f} s (worker or node gone)"), math.nan
    try:
        kind, payload, extra = ray.get(ref)
    except ray.exceptions.RayError as exc:  # worker or node died past the retries, or the task was cancelled
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Solution(Status.ERROR, wall_s=waited,
                        message=f"ray task failed after {MAX_RETRIES} retries: {type(exc).__name__}: {first}"), math.nan
    if kind == "refused":
        return Solution(Status.ERROR, wall_s=extra, message=payload), math.nan
    return payload, extra
