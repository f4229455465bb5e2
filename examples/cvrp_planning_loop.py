"""A small planning loop around opsrl: each day orders arrive in a few regions, routes are planned, results kept.

Every day, each region's depot receives a random number of orders (a location and a demand). The
day's regions become a batch of CVRP instances, planned at once by a trained CVRP policy
(``--checkpoint``, else the shipped ``bq_cvrp`` when opsrl ships one) through ``policy.solve``, or,
when there is no CVRP policy, one by one by the classical ``pyvrp`` solver. Every plan is costed by
opsrl's own ``evaluate``; the routes and a per-day summary are written with pandas.

    python examples/cvrp_planning_loop.py --days 5 --regions 3 --orders 40 --out plans/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

import opsrl
from opsrl.core.errors import OpsrlError
from opsrl.routing.instances import CVRPInstance

CAPACITY = 50.0  # units a vehicle carries


def daily_orders(rng: np.random.Generator, day: int, region: int, mean_orders: int) -> CVRPInstance:
    """One region's orders of one day: customers clustered around a few towns, demands 1..9, depot at the centre."""
    n = max(2, int(rng.poisson(mean_orders)))
    towns = rng.random((3, 2))
    coords = towns[rng.integers(0, 3, n)] + rng.normal(0.0, 0.08, (n, 2))
    coords = np.clip(np.vstack([[0.5, 0.5], coords]), 0.0, 1.0)
    demands = np.concatenate([[0], rng.integers(1, 10, n)])
    return CVRPInstance(coords=coords, demands=demands, capacity=CAPACITY, name=f"day{day}-region{region}")


def planner(checkpoint: str | None, device: str) -> tuple[str, object | None]:
    """The CVRP policy to plan with (given, or shipped), or None to fall back to the pyvrp solver."""
    if checkpoint:
        return "bq", opsrl.load_policy("cvrp", checkpoint, device=device)
    try:
        return "bq", opsrl.load_policy("cvrp", device=device)  # the shipped default, when there is one
    except OpsrlError:
        return "pyvrp", None


def plan_day(instances: list[CVRPInstance], policy: object | None, time_limit: float, beam: int) -> list[opsrl.Result]:
    """Routes for the day's regions: one batched decode with the policy, else pyvrp region by region."""
    if policy is not None:
        return policy.solve(instances, beam=beam)  # type: ignore[attr-defined]
    return [opsrl.solve(inst, solver="pyvrp", time_limit=time_limit, seed=0) for inst in instances]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--orders", type=int, default=40, help="mean orders per region and day")
    parser.add_argument("--checkpoint", default=None, help="a trained CVRP policy (default: the shipped one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--beam", type=int, default=1, help="beam width for the policy (1: greedy)")
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per region for pyvrp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("plans"))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    method, policy = planner(args.checkpoint, args.device)
    rows, routes = [], []
    for day in range(1, args.days + 1):
        instances = [daily_orders(rng, day, r, args.orders) for r in range(args.regions)]
        for inst, result in zip(instances, plan_day(instances, policy, args.time_limit, args.beam)):
            if not result.feasible:
                raise SystemExit(f"{inst.name}: no feasible plan ({result.message})")
            rows.append({"day": day, "region": inst.name.split("-")[1], "orders": inst.size,
                         "demand": int(inst.demands.sum()), "vehicles": len(result.solution),
                         "distance": result.objective, "planner": method, "seconds": result.wall_s})
            routes += [{"day": day, "region": inst.name.split("-")[1], "vehicle": v, "stops": json.dumps(route)}
                       for v, route in enumerate(result.solution)]
    plans, stops = pd.DataFrame(rows), pd.DataFrame(routes)
    args.out.mkdir(parents=True, exist_ok=True)
    plans.to_csv(args.out / "plans.csv", index=False)
    stops.to_csv(args.out / "routes.csv", index=False)
    daily = plans.groupby("day").agg(orders=("orders", "sum"), vehicles=("vehicles", "sum"),
                                     distance=("distance", "sum"), seconds=("seconds", "sum"))
    print(f"planner: {method}")
    print(daily.round(3).to_string())
    print(f"wrote {args.out / 'plans.csv'} and {args.out / 'routes.csv'}")
    return plans


if __name__ == "__main__":
    main()
