"""Lot-sizing solvers: learned policies (pdppo, ppo), MIP planning (pi-mip, rolling-mip) and a heuristic.

Every solver returns the machine choices it took on the setting's test scenarios; the problem's
``evaluate`` re-simulates them. pi-mip solves one SCIP model per scenario (whole demand path known);
rolling-mip solves a small SCIP model every period. Both plan on
a subset of the test scenarios (``scenarios``), split the time limit between them, and say in
``stats`` what was done.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from opsrl.core.errors import UsageError
from opsrl.core.registry import register_solver
from opsrl.core.types import Solution, Status
from opsrl.lotsizing.env import demand_step, post_decision, run_policy
from opsrl.lotsizing.problem import LotSizingSetting, encode_actions, mean_demand, simulate

# ----------------------------------------------------------------------------- heuristic

class DaysOfSupply:
    """Each machine makes the item it can produce with the least days of supply (projected inventory over
    mean demand), counting what machines before it already make this period; it idles when that item's
    inventory would overflow its cap. With ``margin`` > 0 a machine keeps its current item while that item's
    days of supply is within ``margin`` days of the least (saves setups)."""

    def __init__(self, margin: float = 2.0):
        self.margin = margin

    def act(self, setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, greedy: bool = True) -> np.ndarray:
        mu = max(mean_demand(setting.demand), 1e-9)
        proj = inventory.astype(float).copy()
        rows = np.arange(len(inventory))
        out = np.zeros(setup.shape, dtype=np.int64)
        for m in range(setting.n_machines):
            rate = setting.production[m].astype(float)
            can = rate > 0
            if not can.any():
                continue
            dos = np.where(can[None, :], proj / mu, np.inf)
            best = dos.argmin(axis=1)
            cur = setup[:, m] - 1
            has_cur = cur >= 0
            cur_i = np.maximum(cur, 0)
            keep = has_cur & can[cur_i] & (dos[rows, cur_i] <= dos[rows, best] + self.margin)
            choice = np.where(keep, cur_i, best)
            fits = proj[rows, choice] + rate[choice] <= setting.max_inventory[choice] + mu
            out[:, m] = np.where(fits, choice + 1, 0)
            proj[rows[fits], choice[fits]] += rate[choice[fits]]
        return out


@register_solver(["lotsizing"], "heuristic", "least days of supply on each machine (keeps its setup within a margin)")
def solve_heuristic(instance: LotSizingSetting, *, time_limit: float | None, seed: int, margin: float = 2.0) -> Solution:
    sc = instance.scenarios
    t0 = time.perf_counter()
    actions = run_policy(DaysOfSupply(margin), instance, sc.inventory, sc.setup, sc.demand)
    return Solution(Status.FEASIBLE, encode_actions(instance, actions),
                    stats={"scenarios_run": sc.count, "decide_ms_per_period": 1e3 * (time.perf_counter() - t0) / instance.horizon})


@register_solver(["lotsizing"], "static", "a fixed machine-to-item assignment (no setup after period 1), "
                 "searched on sampled training scenarios")
def solve_static(instance: LotSizingSetting, *, time_limit: float | None, seed: int, scenarios: int = 200,
                 restarts: int = 4) -> Solution:
    """Coordinate descent over fixed assignments, costed on ``scenarios`` sampled scenarios (not the test ones),
    from a greedy start and ``restarts`` random ones; the best is applied to every test scenario."""
    from opsrl.lotsizing.static import StaticAssignment, search_assignment

    if scenarios < 1 or restarts < 0:
        raise UsageError(f"--param scenarios={scenarios} restarts={restarts}: expected scenarios >= 1 and restarts >= 0")
    t0 = time.perf_counter()
    found = search_assignment(instance, scenarios=scenarios, restarts=restarts, seed=seed)
    search_s = time.perf_counter() - t0
    sc = instance.scenarios
    t1 = time.perf_counter()
    actions = run_policy(StaticAssignment(found.assignment), instance, sc.inventory, sc.setup, sc.demand)
    stats = {"assignment": found.assignment.tolist(), "training_cost": found.cost, "search_s": search_s,
             "item_cost_evaluations": found.evaluations, "starts": found.starts, "scenarios_run": sc.count,
             "idle_machines": int((found.assignment == 0).sum()),
             "decide_ms_per_period": 1e3 * (time.perf_counter() - t1) / instance.horizon}
    return Solution(Status.FEASIBLE, encode_actions(instance, actions), stats=stats)


# ----------------------------------------------------------------------------- learned policies

def _solve_policy(instance: LotSizingSetting, checkpoint: str, device: str, expect: str) -> Solution:
    from opsrl.core.device import choose_device
    from opsrl.lotsizing.policy import load_policy

    dev = choose_device(device)
    policy, meta = load_policy(instance, checkpoint or None, dev)
    sc = instance.scenarios
    t0 = time.perf_counter()
    actions = run_policy(policy, instance, sc.inventory, sc.setup, sc.demand)
    wall = time.perf_counter() - t0
    stats = {"device": dev, "checkpoint_kind": meta.get("kind"), "trained_on": meta.get("setting"),
             "training_steps": meta.get("metrics", {}).get("steps"), "scenarios_run": sc.count,
             "decide_ms_per_period": 1e3 * wall / instance.horizon}
    message = ""
    if meta.get("kind") != expect:
        message = f"checkpoint was trained with {meta.get('kind')}, not {expect}"
    if meta.get("setting") not in (None, instance.name):
        message = (message + "; " if message else "") + f"checkpoint was trained on setting {meta.get('setting')}"
    return Solution(Status.FEASIBLE, encode_actions(instance, actions), stats=stats, message=message)


@register_solver(["lotsizing"], "pdppo", "PDPPO policy (dual critic PPO); shipped checkpoints for 15x5, 20x10, 25x10, 25x15",
                 needs_torch=True)
def solve_pdppo(instance: LotSizingSetting, *, time_limit: float | None, seed: int, checkpoint: str = "",
                device: str = "cpu") -> Solution:
    return _solve_policy(instance, checkpoint, device, "pdppo")


@register_solver(["lotsizing"], "ppo", "PPO policy (needs --param checkpoint=PATH from opsrl train --algo ppo)",
                 needs_torch=True)
def solve_ppo(instance: LotSizingSetting, *, time_limit: float | None, seed: int, checkpoint: str = "",
              device: str = "cpu") -> Solution:
    if not checkpoint:
        raise UsageError("--param checkpoint=PATH: the ppo solver needs a checkpoint trained with "
                         "`opsrl train --problem lotsizing --algo ppo` (only PDPPO checkpoints are shipped)")
    return _solve_policy(instance, checkpoint, device, "ppo")


@register_solver(["lotsizing"], "bc", "the rolling-horizon MIP imitated by the actor (--param checkpoint=PATH from "
                 "opsrl train --algo bc, or a PPO fine-tuning of one)", needs_torch=True)
def solve_bc(instance: LotSizingSetting, *, time_limit: float | None, seed: int, checkpoint: str = "",
             device: str = "cpu") -> Solution:
    if not checkpoint:
        raise UsageError("--param checkpoint=PATH: the bc solver needs a checkpoint trained with "
                         "`opsrl train --problem lotsizing --algo bc --set demos=FILE`")
    return _solve_policy(instance, checkpoint, device, "bc")


# ----------------------------------------------------------------------------- MIP models

def plan_mip(setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, demand: np.ndarray, *,
             time_limit: float, seed: int = 0, hints: Sequence[np.ndarray] = (),
             node_limit: int = 0) -> tuple[np.ndarray | None, float, float, str]:
    """Cheapest plan (H, m) for known integer demand (H, n) from one state, by SCIP.

    The model is a relaxation of the simulator (it may also discard stock below the cap), so its dual bound
    is a valid lower bound on the cost of any plan. Each of ``hints`` (plans) is given as a starting solution,
    so a plan at least as good as the best of them comes back. ``node_limit`` > 0 also stops SCIP after that many
    branch-and-bound nodes: a limit that, unlike the time limit, gives the same plan however loaded the machine is.
    Returns (plan or None, objective, bound, SCIP status).
    """
    from pyscipopt import SCIP_PARAMSETTING, Model, quicksum

    H, n = demand.shape
    m = setting.n_machines
    cap = setting.max_inventory
    model = Model()
    model.hideOutput()
    model.setParam("limits/time", max(float(time_limit), 0.05))
    if node_limit > 0:
        model.setParam("limits/nodes", int(node_limit))
    model.setParam("randomization/randomseedshift", int(seed) % 2**31)
    model.setPresolve(SCIP_PARAMSETTING.FAST)
    model.setSeparating(SCIP_PARAMSETTING.FAST)
    x, y = {}, {}
    produce: list[list[list[Any]]] = [[[] for _ in range(n)] for _ in range(H)]
    obj = []
    for mm in range(m):
        items = np.flatnonzero(setting.production[mm] > 0)
        for t in range(H):
            for i in items:
                x[t, mm, i] = model.addVar(vtype="B")
                y[t, mm, i] = model.addVar(vtype="B")
                rate = int(setting.production[mm, i])
                loss = int(min(setting.setup_loss[mm, i], rate))
                produce[t][i].append(rate * x[t, mm, i] - loss * y[t, mm, i])
                if t == 0:
                    if setup[mm] != i + 1:
                        model.addCons(y[t, mm, i] >= x[t, mm, i])
                else:
                    model.addCons(y[t, mm, i] >= x[t, mm, i] - x[t - 1, mm, i])
                model.addCons(y[t, mm, i] <= x[t, mm, i])
                obj.append(float(setting.setup_costs[mm, i]) * y[t, mm, i])
            if len(items):
                model.addCons(quicksum(x[t, mm, i] for i in items) <= 1)
    sales = np.empty((H, n), dtype=object)
    stock = np.empty((H, n), dtype=object)
    const = 0.0
    for t in range(H):
        for i in range(n):
            sales[t, i] = model.addVar(lb=0, ub=float(demand[t, i]))
            stock[t, i] = model.addVar(lb=0, ub=float(cap[i]))
            post = quicksum(produce[t][i]) + (float(inventory[i]) if t == 0 else stock[t - 1, i])
            model.addCons(sales[t, i] <= post)
            model.addCons(stock[t, i] + sales[t, i] <= post)
            obj.append(float(setting.holding_costs[i]) * stock[t, i])
            obj.append(-float(setting.lost_sales_costs[i]) * sales[t, i])
            const += float(setting.lost_sales_costs[i]) * float(demand[t, i])
    model.setObjective(quicksum(obj) + const, "minimize")
    for hint in hints:  # the simulated trajectory of each hinted plan: a feasible start
        sol = model.createSol()
        inv, stp = inventory[None].astype(np.int64), setup[None].astype(np.int64)
        for t in range(H):
            for mm in range(m):
                for i in np.flatnonzero(setting.production[mm] > 0):
                    on = int(hint[t, mm] == i + 1)
                    model.setSolVal(sol, x[t, mm, i], on)
                    model.setSolVal(sol, y[t, mm, i], int(on and stp[0, mm] != i + 1))
            post, stp, _ = post_decision(setting, inv, stp, hint[t][None], check=False)
            sold = np.minimum(post[0], demand[t])
            inv = np.minimum(post - sold, cap)
            for i in range(n):
                model.setSolVal(sol, sales[t, i], float(sold[i]))
                model.setSolVal(sol, stock[t, i], float(inv[0, i]))
        model.addSol(sol)
    model.optimize()
    status = model.getStatus()
    bound = float(model.getDualbound())
    if model.getNSols() == 0:
        return None, float("nan"), bound, status
    best = model.getBestSol()
    plan = np.zeros((H, m), dtype=np.int64)
    for (t, mm, i), var in x.items():
        if model.getSolVal(best, var) > 0.5:
            plan[t, mm] = i + 1
    return plan, float(model.getSolObjVal(best)), bound, status


def _pick_scenarios(instance: LotSizingSetting, scenarios: int) -> list[int]:
    if scenarios < 0:
        raise UsageError(f"--param scenarios={scenarios}: expected 0 (all) or a positive count")
    count = instance.scenarios.count if scenarios == 0 else min(scenarios, instance.scenarios.count)
    return list(range(count))


def _cheapest(setting: LotSizingSetting, s: int, plans: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """The plan (T, m) among ``plans`` with the least simulated cost on test scenario ``s``, and that cost."""
    sc = setting.scenarios
    k = len(plans)
    costs = simulate(setting, np.stack(plans), np.repeat(sc.inventory[s][None], k, 0),
                     np.repeat(sc.setup[s][None], k, 0), np.repeat(sc.demand[s][None], k, 0))["total"]
    best = int(np.argmin(costs))
    return plans[best], float(costs[best])


WARM_STARTS = ("rolling", "heuristic")


@register_solver(["lotsizing"], "pi-mip", "perfect-information MIP per test scenario (SCIP): a lower bound",
                 exact=True)
def solve_pi_mip(instance: LotSizingSetting, *, time_limit: float | None, seed: int, scenarios: int = 10,
                 scenario_time: float = 0.0, warm: str = "rolling", warm_horizon: int = 5,
                 warm_step_time: float = 0.2) -> Solution:
    """Solve each of the first ``scenarios`` test scenarios with its whole demand path known.

    ``scenario_time`` (s) per scenario; 0 splits 80 % of the time limit evenly. The warm start is the
    heuristic's plan or (``warm=rolling``, the default) the cheaper of it and a rolling-horizon plan that
    sees the true demand ``warm_horizon`` periods ahead (``warm_step_time`` s per MIP, at most half the
    scenario's time), so every scenario has a plan and SCIP starts from a good one. stats["bound"] is the
    mean SCIP dual bound (valid for any policy on those scenarios; weak unless the model is solved to
    optimality: the LP relaxation of the setup variables is loose); the objective is the simulated cost of
    the best plans found, a perfect-information benchmark that no policy is expected to reach.
    """
    if warm not in WARM_STARTS:
        raise UsageError(f"--param warm={warm}: expected one of {', '.join(WARM_STARTS)}")
    idx = _pick_scenarios(instance, scenarios)
    limit = time_limit if time_limit is not None else 60.0 * len(idx)
    per = scenario_time if scenario_time > 0 else 0.8 * limit / len(idx)
    sc = instance.scenarios
    heur = run_policy(DaysOfSupply(), instance, sc.inventory[idx], sc.setup[idx], sc.demand[idx])
    plans, bounds, objs, statuses, warm_costs = [], [], [], [], []
    t0 = time.perf_counter()
    done: list[int] = []
    for k, s in enumerate(idx):
        left = limit - (time.perf_counter() - t0)
        last = (time.perf_counter() - t0) / k if k else 0.0
        if k and left < 1.2 * last:  # the next scenario would not fit: stop with the ones done
            break
        budget = min(per, max(left / (len(idx) - k) - 0.5, 0.05))  # model building eats into the limit too
        start_s = time.perf_counter()
        candidates = [heur[k]]
        if warm == "rolling":
            demand = sc.demand[s]
            rolled, _ = roll(instance, sc.inventory[s], sc.setup[s], demand, lambda t, h: demand[t:t + h],
                             horizon=warm_horizon, step_time=warm_step_time, seed=seed,
                             deadline=start_s + budget / 2)
            candidates.insert(0, rolled)
        start, start_cost = _cheapest(instance, s, candidates)
        budget = max(budget - (time.perf_counter() - start_s), 0.05)
        plan, obj, bound, status = plan_mip(instance, sc.inventory[s], sc.setup[s], sc.demand[s],
                                            time_limit=budget, seed=seed, hints=[start])
        # keep the MIP plan unless it simulates worse than its warm start (the model may discard stock)
        plans.append(plan if plan is not None and _cheapest(instance, s, [plan])[1] <= start_cost else start)
        bounds.append(bound)
        objs.append(obj)
        statuses.append(status)
        warm_costs.append(start_cost)
        done.append(s)
    idx = done
    all_opt = all(s == "optimal" for s in statuses) and len(done) == len(_pick_scenarios(instance, scenarios))
    stats = {"bound": float(np.mean(bounds)), "scenarios": idx, "scenario_bounds": bounds, "mip_objectives": objs,
             "warm_start": warm, "warm_start_costs": warm_costs,
             "mip_status": {s: statuses.count(s) for s in set(statuses)}, "scenario_time_s": per,
             "solver_s": time.perf_counter() - t0, "solver": "scip"}
    message = (f"perfect-information plans on test scenarios 0..{idx[-1]} ({len(idx)} of {sc.count}); "
               f"{statuses.count('optimal')} proven optimal within {per:.2g} s each")
    return Solution(Status.OPTIMAL if all_opt else Status.TIMEOUT, encode_actions(instance, np.stack(plans), idx),
                    stats=stats, message=message)


def expected_forecast(setting: LotSizingSetting, horizon: int) -> np.ndarray:
    """The rolling-horizon MIP's forecast (horizon, n): the mean demand, rounded to an integer."""
    return np.full((horizon, setting.n_items), int(round(mean_demand(setting.demand))), dtype=np.int64)


def mip_choice(setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, forecast: np.ndarray, *,
               step_time: float, seed: int = 0, node_limit: int = 0) -> tuple[np.ndarray, str]:
    """The rolling-horizon MIP's choices (m,) in one state and SCIP's status: the first period of its plan over
    ``forecast`` (h, n), warm-started with two plans: the heuristic's choices held for h periods (the answer
    when no plan comes back), and every machine kept on its current setup (no setup cost)."""
    h = len(forecast)
    greedy = np.repeat(DaysOfSupply().act(setting, inventory[None], setup[None]), h, axis=0)
    keep = np.repeat(np.asarray(setup, dtype=np.int64)[None], h, axis=0)
    plan, _, _, status = plan_mip(setting, inventory, setup, forecast, time_limit=step_time, seed=seed,
                                  hints=[greedy, keep], node_limit=node_limit)
    return (plan if plan is not None else greedy)[0], status


def roll(setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, demand: np.ndarray,
         forecast: Any, *, horizon: int, step_time: float, seed: int = 0,
         deadline: float = float("inf"), node_limit: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """Rolling-horizon plan (T, m) of one scenario: each period plan ``forecast(t, h)`` (h, n) ahead from the
    current state, apply the first period, meet the real ``demand`` (T, n), roll. Past ``deadline``
    (perf_counter) the heuristic decides the rest. Returns (choices, MIP status counts)."""
    T = len(demand)
    actions = np.zeros((T, setting.n_machines), dtype=np.int64)
    statuses: dict[str, int] = {}
    inv, stp = inventory[None].copy(), setup[None].copy()
    for t in range(T):
        if time.perf_counter() > deadline:
            actions[t], status = DaysOfSupply().act(setting, inv, stp)[0], "heuristic fallback"
        else:
            actions[t], status = mip_choice(setting, inv[0], stp[0], forecast(t, min(horizon, T - t)),
                                            step_time=step_time, seed=seed, node_limit=node_limit)
        statuses[status] = statuses.get(status, 0) + 1
        post, stp, _ = post_decision(setting, inv, stp, actions[t][None], check=False)
        inv, _, _ = demand_step(setting, post, demand[t][None])
    return actions, statuses


@register_solver(["lotsizing"], "rolling-mip", "rolling-horizon MIP on expected demand: plan H periods, apply the first")
def solve_rolling_mip(instance: LotSizingSetting, *, time_limit: float | None, seed: int, horizon: int = 5,
                      scenarios: int = 5, step_time: float = 0.0, node_limit: int = 0) -> Solution:
    """Each period: plan ``horizon`` periods on the expected demand (rounded to integers) from the current
    state, apply the first period's choices, see the real demand, roll. ``step_time`` (s) per MIP; 0 splits
    70 % of the time limit evenly over the first ``scenarios`` test scenarios' periods. ``node_limit`` > 0
    stops each MIP after that many nodes as well: with a ``step_time`` that the node limit reaches first, the
    plans (and the cost) no longer depend on the machine's load."""
    if horizon < 1:
        raise UsageError(f"--param horizon={horizon}: expected a positive number of periods")
    if node_limit < 0:
        raise UsageError(f"--param node_limit={node_limit}: expected 0 (no limit) or a positive number of nodes")
    idx = _pick_scenarios(instance, scenarios)
    T = instance.horizon
    limit = time_limit if time_limit is not None else 1.0 * len(idx) * T
    per = step_time if step_time > 0 else 0.7 * limit / (len(idx) * T)
    mu = expected_forecast(instance, horizon)
    sc = instance.scenarios
    actions = np.zeros((len(idx), T, instance.n_machines), dtype=np.int64)
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()
    done: list[int] = []
    for k, s in enumerate(idx):
        left = limit - (time.perf_counter() - t0)
        if k and left < 1.2 * (time.perf_counter() - t0) / k:  # the next scenario would not fit
            break
        actions[k], counts = roll(instance, sc.inventory[s], sc.setup[s], sc.demand[s], lambda t, h: mu[:h],
                                  horizon=horizon, step_time=per, seed=seed, deadline=t0 + 0.9 * limit,
                                  node_limit=node_limit)
        for key, v in counts.items():
            statuses[key] = statuses.get(key, 0) + v
        done.append(s)
    idx = done
    actions = actions[: len(done)]
    stats = {"scenarios": idx, "plan_horizon": horizon, "step_time_s": per, "node_limit": node_limit, "mip_status": statuses,
             "heuristic_fallback_periods": statuses.get("heuristic fallback", 0),
             "solver_s": time.perf_counter() - t0, "solver": "scip",
             "planned_demand": int(mu[0, 0]) if mu.size else None}
    message = f"rolling plans on test scenarios 0..{idx[-1]} ({len(idx)} of {sc.count}), {per:.2g} s per MIP"
    return Solution(Status.FEASIBLE, encode_actions(instance, actions, idx), stats=stats, message=message)
