"""The ``bq`` solver: a BQ-NCO policy (opsrl/routing/policy.py) decoding one instance.

Importing this module registers the solver and nothing more: torch is imported only when it runs
(the harness spawns a fresh worker for it, ``needs_torch``). Greedy decoding is one pass; beam search
and sampling first decode greedily, then search until done or until 90 % of the time limit, falling
back to the greedy solution (status ``timeout``) when the clock runs out first.
"""

from __future__ import annotations

import time

from opsrl.core.errors import UsageError
from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.routing.solvers.pyvrp_solver import PYVRP_IMPORTS

DEADLINE_SHARE = 0.9  # of the time limit, for beam search or sampling; the rest for wrapping up


def _check(beam: int, samples: int, knn: int | None, batch: int) -> None:
    checks = (("beam", beam, 1), ("samples", samples, 0), ("knn", 0 if knn is None else knn, 0), ("batch", batch, 1))
    for name, value, least in checks:
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise UsageError(f"--param {name}={value}: expected an integer >= {least}")
    if beam > 1 and samples > 0:
        raise UsageError("--param beam and samples: choose one (beam search or sampling)")


@register_solver(["tsp", "cvrp", "op", "kp"], "bq",
                 "BQ-NCO neural policy (needs a checkpoint): greedy, beam search or sampling", needs_torch=True)
def solve_bq(instance: object, *, time_limit: float | None, seed: int, checkpoint: str = "", beam: int = 1,
             samples: int = 0, knn: int | None = None, device: str = "auto", batch: int = 256,
             precision: str = "auto") -> Solution:
    """Decode ``instance`` with the policy in ``checkpoint`` (empty: the shipped default for the problem).

    ``knn`` K > 0 shows each step the K nodes nearest the origin, 0 every node; unset, the checkpoint's
    recommendation (its sidecar's ``decoding.knn``, else 0).
    ``precision`` auto computes in bf16 where the hardware has it, fp32 elsewhere (fp32|bf16 force one).
    """
    t0 = time.perf_counter()
    _check(beam, samples, knn, batch)
    from opsrl.core.device import amp_dtype, choose_device
    from opsrl.routing.decode import decode_details
    from opsrl.routing.policy import load_policy, shipped_checkpoint

    problem = instance.problem  # type: ignore[attr-defined]
    dev = choose_device(device)
    amp_dtype(dev, precision)  # a bad precision fails here, before the checkpoint loads
    policy = load_policy(problem, checkpoint or None, dev)
    deadline = None if time_limit is None else t0 + DEADLINE_SHARE * float(time_limit)
    found = decode_details(policy, [instance], beam=beam, samples=samples, knn=knn, device=dev, seed=seed,
                           batch=batch, deadline=deadline, precision=precision)
    stats = {**found.stats, "checkpoint": checkpoint or str(shipped_checkpoint(problem)),
             "parameters": policy.num_parameters(), "solver_s": time.perf_counter() - t0}
    if found.timed_out:
        return Solution(Status.TIMEOUT, found.solutions[0], stats,
                        message=f"{stats['mode']} stopped at the time limit; the greedy solution is returned")
    return Solution(Status.FEASIBLE, found.solutions[0], stats)


LS_DEFAULT_S = 10.0  # total budget of bq+ls when no time limit is given


@register_solver(["tsp", "cvrp", "op"], "bq+ls",
                 "BQ-NCO greedy solution polished by PyVRP's search started from it, until the limit",
                 needs_torch=True, imports=PYVRP_IMPORTS)
def solve_bq_ls(instance: object, *, time_limit: float | None, seed: int, checkpoint: str = "", knn: int | None = None,
                device: str = "auto", precision: str = "auto") -> Solution:
    """The neural start must pay for itself: greedy BQ decoding, then PyVRP from that solution for the rest of the limit."""
    t0 = time.perf_counter()
    budget = LS_DEFAULT_S if time_limit is None else float(time_limit)
    start = solve_bq(instance, time_limit=budget, seed=seed, checkpoint=checkpoint, knn=knn, device=device,
                     precision=precision)
    from opsrl.routing.solvers.pyvrp_solver import solve_from

    left = budget - (time.perf_counter() - t0)
    if left <= 0.05:
        return Solution(Status.FEASIBLE, start.data, {**start.stats, "ls_s": 0.0},
                        message="no time left for local search after decoding")
    polished = solve_from(instance, start.data, time_limit=left, seed=seed)
    stats = {**start.stats, **{f"ls_{k}": v for k, v in polished.stats.items()},
             "decode_s": start.stats.get("solver_s"), "solver_s": time.perf_counter() - t0}
    return Solution(Status.FEASIBLE, polished.data, stats)
