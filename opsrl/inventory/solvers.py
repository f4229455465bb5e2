"""Inventory solvers: exact DP (one store, lost sales), base-stock and capped base-stock found by
simulation search with common random numbers, Clark-Scarf echelon stock, newsvendor heuristics, the
closed-form backlog optimum, and HDPO policies from checkpoints.

Every solver returns the orders it placed on the test scenarios; the problem's ``evaluate`` costs them.
Torch (the simulator) is imported only inside the solvers; the DP and Clark-Scarf maths are numpy.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from opsrl.core.errors import UsageError
from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.inventory.problem import InventoryInstance, encode_orders

SEARCH_SCENARIOS = 1024  # scenarios x periods of the search set (dev split, its own seed stream)
SEARCH_PERIODS = 300


# --- demand distributions (no scipy) -------------------------------------------------------------

def poisson_pmf(mean: float, upto: int) -> np.ndarray:
    """P(D = k) for k = 0..upto."""
    k = np.arange(upto + 1)
    lg = np.array([math.lgamma(i + 1) for i in k])
    return np.exp(k * math.log(mean) - mean - lg)


def poisson_ppf(q: float, mean: float) -> int:
    """Smallest k with P(D <= k) >= q."""
    k, cdf = 0, 0.0
    pmf = poisson_pmf(mean, int(mean + 20 * math.sqrt(mean) + 20))
    for k, pk in enumerate(pmf):
        cdf += pk
        if cdf >= q - 1e-12:
            return k
    return k


# --- exact DP: one store, lost sales, Poisson demand ---------------------------------------------

@lru_cache(maxsize=8)
def lost_sales_dp(p: float, h: float, mean: float, lead_time: int, slack: int = 3,
                  tol: float = 1e-7, max_iter: int = 5000) -> tuple[float, np.ndarray, int, int]:
    """Relative value iteration for one store with lost sales: (optimal average cost, order table, S, A).

    State (on hand x, pipeline q_1..q_{L-1}); an order a arrives after L periods. Orders are bounded
    by A (the p/(p+h) fractile of one-period demand plus ``slack``) and on hand plus pipeline plus
    order by S (the fractile of (L+1)-period demand plus ``slack``). The table maps a state to its order.
    """
    L = int(lead_time)
    frac = p / (p + h)
    A = poisson_ppf(frac, mean) + slack
    S = poisson_ppf(frac, mean * (L + 1)) + slack
    pmf = poisson_pmf(mean, S)
    tail = max(0.0, 1.0 - pmf[:S].sum())
    w = np.concatenate([pmf[:S], [tail]])  # d = 0..S-1, and d >= S lumped (all give (x - d)^+ = 0)
    x = np.arange(S + 1)
    below = np.array([(np.maximum(xx - np.arange(S + 1), 0) * w).sum() for xx in x])  # E(x - D)^+
    cost = p * (mean - x + below) + h * below  # E[p (D - x)^+ + h (x - D)^+]
    qdims = (A + 1,) * (L - 1)
    shape = (S + 1, *qdims)
    # total = x + q_1 + ... + q_{L-1} over the state grid, and the feasibility of (state, a)
    total = x.reshape((-1,) + (1,) * (L - 1)).astype(np.int64)
    for i in range(L - 1):
        total = total + np.arange(A + 1).reshape((1,) * (i + 1) + (-1,) + (1,) * (L - 2 - i))
    a = np.arange(A + 1).reshape((1,) * L + (-1,))
    ok = (total[..., None] + a) <= S  # (S+1, q..., A+1)
    state_ok = total <= S
    idx = [np.minimum(np.maximum(x[:, None] - d, 0) + np.arange(A + 1)[None, :], S) for d in range(S + 1)]
    V = np.zeros(shape)
    cost_b = cost.reshape((-1,) + (1,) * (L - 1))
    g = math.nan
    for _ in range(max_iter):
        flat = V.reshape(S + 1, -1)
        T = np.zeros((S + 1, A + 1, flat.shape[1]))
        for d in range(S + 1):
            if w[d] > 0:
                T += w[d] * flat[idx[d]]
        # T[x, k, r] with k = q_1 (or the order when L = 1) and r = (q_2..q_{L-1}, a)
        Q = T.reshape((S + 1, A + 1) + (A + 1,) * (L - 1)) if L > 1 else T.reshape(S + 1, A + 1)
        Q = np.where(ok, Q, np.inf)
        best = Q.min(-1)
        new = np.where(state_ok, cost_b + np.where(state_ok, best, 0.0), 0.0)
        diff = (new - V)[state_ok]
        lo, hi = diff.min(), diff.max()
        V = new - new.flat[0]
        g = 0.5 * (lo + hi)
        if hi - lo < tol * max(1.0, abs(g)):
            break
    policy = np.where(state_ok[..., None], Q, np.inf).argmin(-1)
    return float(g), policy.astype(np.int64), S, A


# --- helpers ---------------------------------------------------------------------------------------

def _solution(inst: InventoryInstance, policy: Any, stats: dict[str, Any], t0: float,
              status: Status = Status.FEASIBLE, message: str = "") -> Solution:
    """Run ``policy`` on the test scenarios and wrap the orders it placed."""
    from opsrl.inventory.simulator import run_policy, set_threads

    set_threads()
    cost, orders = run_policy(inst, policy, "test")
    stats = {**stats, "simulated_cost": cost, "solver_s": time.perf_counter() - t0}
    return Solution(status, encode_orders(orders, inst.demand.discrete), stats, message=message)


def _search_cost(inst: InventoryInstance, policy: Any) -> float:
    from opsrl.inventory.simulator import run_policy

    return run_policy(inst, policy, "dev", count=SEARCH_SCENARIOS, periods=max(SEARCH_PERIODS, inst.periods),
                      record=False)[0]


def base_stock_policy(net: Any, levels: Any, caps: Any = None, echelon: bool = True) -> Any:
    """Order up to ``levels`` (echelon inventory position per location), optionally at most ``caps`` per period."""
    import torch

    S = torch.as_tensor(np.asarray(levels, dtype=float), dtype=net.dtype, device=net.device)
    C = None if caps is None else torch.as_tensor(np.asarray(caps, dtype=float), dtype=net.dtype, device=net.device)

    def policy(state: Any, t: int) -> Any:
        pos = net.echelon_position(state) if echelon else state.position()
        want = torch.relu(S - pos)
        if C is not None:
            want = torch.minimum(want, C)
        return want @ net.share.T

    return policy


def _single_store(inst: InventoryInstance, solver: str) -> None:
    if inst.n_stores != 1:
        raise UsageError(f"solver {solver}: expects a one-store setting, {inst.name} has {inst.n_stores} stores")


def _demand_over(inst: InventoryInstance, periods: int, stores: list[int]) -> tuple[float, float]:
    """Mean and standard deviation of total demand of ``stores`` over ``periods`` periods."""
    d = inst.demand
    from opsrl.inventory.simulator import demand_means

    mean = demand_means(inst)[stores].sum() * periods
    if d.kind == "poisson":
        return mean, math.sqrt(mean)
    if d.kind == "history":
        return mean, math.sqrt(mean)
    sd = np.asarray(d.std)[stores]
    corr = d.correlation if d.kind == "mvnormal" else 0.0
    var = (corr * np.outer(sd, sd) + (1 - corr) * np.diag(sd ** 2)).sum() * periods
    return mean, math.sqrt(var)


def newsvendor_levels(inst: InventoryInstance) -> np.ndarray:
    """Echelon order-up-to levels: the p/(p+h) fractile of the demand below each location over its
    total lead time to the stores plus one period."""
    n = inst.n_stores
    locs = inst.locations
    lead_into = {}
    for e in inst.edges:
        lead_into.setdefault(e.dst, []).append(e.lead_time)
    children = {i: [e.dst for e in inst.edges if e.src == i] for i in range(len(locs))}
    levels = np.zeros(len(locs))
    for i in range(len(locs)):
        stores, frontier, depth = [], [(i, 0)], []
        while frontier:
            j, lead = frontier.pop()
            lead += min(lead_into[j])
            if j < n:
                stores.append(j)
                depth.append(lead)
            frontier.extend((c, lead) for c in children[j])
        periods = int(round(np.mean(depth))) + 1
        pen = np.mean([locs[s].penalty for s in stores])
        hold = np.mean([locs[s].holding for s in stores])
        m, sd = _demand_over(inst, periods, stores)
        z = NormalDist().inv_cdf(pen / (pen + hold))
        if inst.demand.discrete and len(stores) == 1:
            levels[i] = poisson_ppf(pen / (pen + hold), m)
        else:
            levels[i] = m + z * sd
    return levels


def _search_levels(inst: InventoryInstance, start: np.ndarray, evaluate: Any, integer: bool,
                   deadline: float | None) -> tuple[np.ndarray, float, int]:
    """Coordinate search on levels with common random numbers: steps shrink until none improves."""
    best = np.array(start, dtype=float)
    best_cost = evaluate(best)
    sims = 1
    step = max(1.0, float(np.max(np.abs(best))) * 0.1) if not integer else max(1.0, round(float(np.max(best)) * 0.1))
    while step >= (1.0 if integer else 0.05):
        improved = False
        for i in range(len(best)):
            for sign in (1, -1):
                while True:
                    if deadline is not None and time.perf_counter() > deadline:
                        return best, best_cost, sims
                    trial = best.copy()
                    trial[i] = max(0.0, trial[i] + sign * step)
                    if trial[i] == best[i]:
                        break
                    c = evaluate(trial)
                    sims += 1
                    if c < best_cost - 1e-12:
                        best, best_cost, improved = trial, c, True
                    else:
                        break
        if not improved:
            step = step / 2 if not integer or step > 1 else 0
            if integer:
                step = float(math.floor(step)) if step >= 1 else 0
    return best, best_cost, sims


def _deadline(time_limit: float | None, t0: float) -> float | None:
    return None if time_limit is None else t0 + 0.7 * float(time_limit)


# --- registered solvers ------------------------------------------------------------------------------

def dp_applies(inst: InventoryInstance) -> bool:
    """Whether the exact DP covers the instance: one store, lost sales, Poisson demand, outside supplier."""
    return (inst.n_locations == 1 and inst.lost_sales and inst.demand.kind == "poisson"
            and len(inst.edges) == 1 and inst.edges[0].src == -1)


def dp_policy(inst: InventoryInstance, net: Any, slack: int = 3) -> Any:
    """The optimal policy of a one-store lost-sales instance as a simulator policy (a table lookup)."""
    import torch

    loc = inst.locations[0]
    L = inst.edges[0].lead_time
    g, table, S, A = lost_sales_dp(loc.penalty, loc.holding, inst.demand.mean[0], L, slack)
    tab = torch.as_tensor(table.reshape(-1), device=net.device)
    strides = [int(np.prod(table.shape[i + 1:])) for i in range(table.ndim)]

    def policy(state: Any, t: int) -> Any:
        x = state.onhand[:, 0].round().clamp(0, S).long()
        flat = x * strides[0]
        for k in range(1, L):
            flat = flat + state.pipe[:, 0, k - 1].round().clamp(0, A).long() * strides[k]
        return tab[flat].to(net.dtype)[:, None]

    policy.info = {"dp_average_cost": g, "order_bound": A, "position_bound": S,  # type: ignore[attr-defined]
                   "states": int(np.prod(table.shape))}
    return policy


@register_solver(["inventory"], "dp", "exact value iteration: one store, lost sales, Poisson demand",
                 needs_torch=True, exact=True)
def solve_dp(instance: InventoryInstance, *, time_limit: float | None, seed: int, slack: int = 3) -> Solution:
    """The optimal policy by relative value iteration, run on the test scenarios."""
    t0 = time.perf_counter()
    inst = instance
    _single_store(inst, "dp")
    if not dp_applies(inst):
        raise UsageError(f"solver dp: needs one store with lost sales and Poisson demand ({inst.name} is not)")
    from opsrl.inventory.simulator import Network

    policy = dp_policy(inst, Network(inst), slack)
    return _solution(inst, policy, dict(policy.info), t0, Status.OPTIMAL)


@register_solver(["inventory"], "base-stock", "best order-up-to levels (echelon positions), simulation search with CRN",
                 needs_torch=True)
def solve_base_stock(instance: InventoryInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Order-up-to levels per location, searched from the newsvendor levels on a fixed search set."""
    t0 = time.perf_counter()
    from opsrl.inventory.simulator import Network, set_threads

    set_threads()
    inst = instance
    net = Network(inst)
    integer = inst.demand.discrete
    start = np.round(newsvendor_levels(inst)) if integer else newsvendor_levels(inst)
    levels, cost, sims = _search_levels(inst, start, lambda lv: _search_cost(inst, base_stock_policy(net, lv)),
                                        integer, _deadline(time_limit, t0))
    return _solution(inst, base_stock_policy(net, levels), {"levels": levels.tolist(), "search_cost": cost,
                                                            "simulations": sims}, t0)


@register_solver(["inventory"], "capped-base-stock",
                 "best order-up-to level and order cap (one store), simulation search with CRN", needs_torch=True)
def solve_capped(instance: InventoryInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Order min(cap, (S - position)^+): every cap from the mean demand up, each with its best S."""
    t0 = time.perf_counter()
    from opsrl.inventory.simulator import Network, set_threads

    set_threads()
    inst = instance
    _single_store(inst, "capped-base-stock")
    net = Network(inst)
    integer = inst.demand.discrete
    start = np.round(newsvendor_levels(inst)) if integer else newsvendor_levels(inst)
    mean = float(net.mean[0])
    caps = np.arange(math.floor(mean), math.ceil(mean + 4 * math.sqrt(mean)) + 2, 1.0)
    deadline = _deadline(time_limit, t0)
    best = (math.inf, None, None)
    sims, worse = 0, 0
    level = start
    for cap in caps:
        level, cost, k = _search_levels(inst, level, lambda lv: _search_cost(inst, base_stock_policy(net, lv, [cap])),
                                        integer, deadline)
        sims += k
        if cost < best[0]:
            best, worse = (cost, level.copy(), cap), 0
        else:
            worse += 1
            if worse >= 3:
                break
        if deadline is not None and time.perf_counter() > deadline:
            break
    cost, level, cap = best
    return _solution(inst, base_stock_policy(net, level, [cap]), {"levels": level.tolist(), "cap": float(cap),
                                                                  "search_cost": cost, "simulations": sims}, t0)


@register_solver(["inventory"], "newsvendor", "echelon order-up-to levels at the newsvendor fractile (no search)",
                 needs_torch=True)
def solve_newsvendor(instance: InventoryInstance, *, time_limit: float | None, seed: int) -> Solution:
    """The classic heuristic: each level is the p/(p+h) fractile of lead-time-plus-one demand below it."""
    t0 = time.perf_counter()
    from opsrl.inventory.simulator import Network

    levels = newsvendor_levels(instance)
    if instance.demand.discrete:
        levels = np.round(levels)
    return _solution(instance, base_stock_policy(Network(instance), levels), {"levels": levels.tolist()}, t0)


@register_solver(["inventory"], "closed-form", "optimal base-stock of one backlogged store (newsvendor over L+1 periods)",
                 needs_torch=True, exact=True)
def solve_closed_form(instance: InventoryInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Order up to mu (L+1) + z sigma sqrt(L+1): optimal for one store with backlog and Normal demand."""
    t0 = time.perf_counter()
    inst = instance
    _single_store(inst, "closed-form")
    if inst.lost_sales or inst.demand.kind not in ("normal", "mvnormal"):
        raise UsageError(f"solver closed-form: needs one backlogged store with Normal demand ({inst.name} is not)")
    from opsrl.inventory.simulator import Network

    loc, L = inst.locations[0], inst.edges[0].lead_time
    z = NormalDist().inv_cdf(loc.penalty / (loc.penalty + loc.holding))
    level = inst.demand.mean[0] * (L + 1) + z * inst.demand.std[0] * math.sqrt(L + 1)
    return _solution(inst, base_stock_policy(Network(inst), [level]), {"levels": [level]}, t0, Status.OPTIMAL)


def serial_chain(inst: InventoryInstance) -> list[int]:
    """The locations of a serial system from the store up, or a usage error when it is not one."""
    chain, cur = [0], 0
    by_dst = {}
    for e in inst.edges:
        by_dst.setdefault(e.dst, []).append(e)
    if inst.n_stores != 1 or any(len(v) != 1 for v in by_dst.values()):
        raise UsageError(f"solver echelon-stock: needs a serial system (one store, one supplier per location); "
                         f"{inst.name} is not")
    while by_dst[cur][0].src != -1:
        cur = by_dst[cur][0].src
        chain.append(cur)
    if len(chain) != inst.n_locations:
        raise UsageError(f"solver echelon-stock: {inst.name} is not a single chain")
    return chain


def clark_scarf_levels(inst: InventoryInstance, step: float = 0.05) -> np.ndarray:
    """Optimal echelon base-stock levels of a backlogged serial system (Clark-Scarf decomposition, on a grid).

    C_1(y) = h'_1 y + (p + h_1) E(D[L_1 + 1] - y)^+ and C_i(y) = h'_i y + E C_{i-1}(min(y - D[L_i], S_{i-1})),
    with echelon holding costs h'_i = h_i - h_{i+1}; S_i minimises C_i.
    """
    chain = serial_chain(inst)
    locs = [inst.locations[i] for i in chain]
    leads = [next(e.lead_time for e in inst.edges if e.dst == i) for i in chain]
    hs = [loc.holding for loc in locs] + [0.0]
    p = locs[0].penalty
    m, sd = inst.demand.mean[0], (inst.demand.std[0] if inst.demand.std else math.sqrt(inst.demand.mean[0]))
    hi_d = m + 8 * sd
    grid_d = np.arange(0.0, hi_d + step, step)
    if inst.demand.kind == "poisson":
        one = np.zeros(len(grid_d))
        pmf = poisson_pmf(m, int(hi_d))
        one[np.round(np.arange(len(pmf)) / step).astype(int)] = pmf
    else:
        nd = NormalDist(m, sd)
        edges_ = np.concatenate([[-np.inf], grid_d[:-1] + step / 2, [np.inf]])
        cdf = np.array([nd.cdf(x) if np.isfinite(x) else (0.0 if x < 0 else 1.0) for x in edges_])
        one = np.diff(cdf)  # clipped at 0: the mass below 0 sits on 0
    one = one / one.sum()

    def over(k: int) -> np.ndarray:
        out = np.array([1.0])
        for _ in range(k):
            out = np.convolve(out, one)
        return out

    total_lead = sum(leads) + 1
    lo = -(m * total_lead + 8 * sd * math.sqrt(total_lead))
    hi = m * total_lead + 8 * sd * math.sqrt(total_lead)
    y = np.arange(math.floor(lo / step), math.ceil(hi / step) + 1) * step
    dist = over(leads[0] + 1)
    dvals = np.arange(len(dist)) * step
    # E(D - y)^+ for every y on the grid
    mean_d = (dist * dvals).sum()
    cdf = np.cumsum(dist)
    partial = np.cumsum(dist * dvals)
    k = np.clip(np.floor(y / step).astype(int), -1, len(dist) - 1)
    below_mass = np.where(k >= 0, cdf[np.maximum(k, 0)], 0.0)
    below_val = np.where(k >= 0, partial[np.maximum(k, 0)], 0.0)
    short = (mean_d - below_val) - y * (1 - below_mass)
    C = (hs[0] - hs[1]) * y + (p + hs[0]) * short
    levels = [float(y[np.argmin(np.where(y >= 0, C, np.inf))])]
    for i in range(1, len(chain)):
        S_prev = levels[-1]
        f = C[np.minimum(np.arange(len(y)), np.searchsorted(y, S_prev - 1e-9))]  # C_{i-1}(min(z, S_{i-1}))
        dist = over(leads[i])
        # E f(y - D): convolve; below the grid f is extended linearly by its slope at the left end
        pad = len(dist)
        slope = (f[1] - f[0]) / step
        ext = np.concatenate([f[0] - slope * step * np.arange(pad, 0, -1), f])
        conv = np.convolve(ext, dist)[pad:pad + len(y)]
        C = (hs[i] - hs[i + 1]) * y + conv
        levels.append(float(y[np.argmin(np.where(y >= 0, C, np.inf))]))
    out = np.zeros(inst.n_locations)
    for i, loc_index in enumerate(chain):
        out[loc_index] = levels[i]
    return out


@register_solver(["inventory"], "echelon-stock", "Clark-Scarf optimal echelon base-stock levels (serial, backlog)",
                 needs_torch=True)
def solve_echelon(instance: InventoryInstance, *, time_limit: float | None, seed: int) -> Solution:
    """Each stage orders up to its Clark-Scarf echelon level, limited by its supplier's stock."""
    t0 = time.perf_counter()
    from opsrl.inventory.simulator import Network

    levels = clark_scarf_levels(instance)
    exact = not instance.lost_sales
    return _solution(instance, base_stock_policy(Network(instance), levels), {"levels": levels.tolist()}, t0,
                     Status.FEASIBLE, "" if exact else "lost sales: Clark-Scarf levels are a heuristic here")


@register_solver(["inventory"], "hdpo", "HDPO-trained neural policy (the shipped checkpoint for the instance, or checkpoint=)",
                 needs_torch=True)
def solve_hdpo(instance: InventoryInstance, *, time_limit: float | None, seed: int, checkpoint: str = "",
               device: str = "cpu") -> Solution:
    """Run the HDPO policy on the test scenarios (integer orders where demand is discrete)."""
    t0 = time.perf_counter()
    from opsrl.core.device import choose_device
    from opsrl.inventory.policy import load_policy
    from opsrl.inventory.simulator import Network, set_threads

    set_threads()
    dev = choose_device(device)
    policy, meta, path = load_policy(instance, checkpoint or None, dev)
    net = Network(instance, dev)
    fn = policy.as_fn(net)
    from opsrl.inventory.simulator import run_policy

    cost, orders = run_policy(instance, fn, "test", device=dev)
    stats = {"checkpoint": str(path), "policy": meta.get("architecture", {}).get("kind"), "simulated_cost": cost,
             "solver_s": time.perf_counter() - t0, "device": dev}
    return Solution(Status.FEASIBLE, encode_orders(orders, instance.demand.discrete), stats)
