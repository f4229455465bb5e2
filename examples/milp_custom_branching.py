"""Plug opsrl's learned branching rule into your own PySCIPOpt model.

A user builds a model in PySCIPOpt as usual (here a small set-cover-like covering problem with
random costs), then includes the shipped learned branching rule (or one trained with ``opsrl train
--problem milp``) as a Branchrule with top priority, and solves it side by side with SCIP's own
branching under the same settings.

    python examples/milp_custom_branching.py --rows 250 --cols 500 [--checkpoint milp_sc.safetensors]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from pyscipopt import Model, quicksum

from opsrl.milp.policy import learned_branchrule, load_policy
from opsrl.milp.solvers import TOP_PRIORITY, configure


def covering_model(rows: int, cols: int, seed: int) -> Model:
    """Your own model: choose columns of least cost so that every row is covered at least once."""
    rng = np.random.default_rng(seed)
    model = Model("my-covering")
    x = [model.addVar(vtype="B", name=f"x{j}", obj=float(rng.integers(1, 101))) for j in range(cols)]
    for i in range(rows):
        cover = rng.choice(cols, size=max(2, cols // 25), replace=False)
        model.addCons(quicksum(x[j] for j in cover) >= 1, name=f"row{i}")
    return model


def solve(model: Model, policy: object | None, time_limit: float, seed: int) -> dict:
    """Solve with SCIP's branching (policy None) or with the learned rule included at top priority."""
    configure(model, time_limit, seed, learn2branch=True)
    rule = None
    if policy is not None:
        rule = learned_branchrule(policy)(model)
        model.includeBranchrule(rule, "learned", "opsrl learned branching", priority=TOP_PRIORITY,
                                maxdepth=-1, maxbounddist=1.0)
    t0 = time.perf_counter()
    model.optimize()
    row = {"status": model.getStatus(), "objective": model.getObjVal(), "nodes": model.getNNodes(),
           "seconds": round(time.perf_counter() - t0, 2)}
    if rule is not None:  # how often the learned rule chose, and what its features and inference cost
        row.update({k: v for k, v in rule.stats().items() if isinstance(v, (int, float))})
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--cols", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--checkpoint", default=None, help="a milp checkpoint (default: the shipped set-cover one)")
    args = parser.parse_args(argv)
    policy = load_policy(args.checkpoint)
    out = {"scip": solve(covering_model(args.rows, args.cols, args.seed), None, args.time_limit, args.seed),
           "learned": solve(covering_model(args.rows, args.cols, args.seed), policy, args.time_limit, args.seed)}
    for name, row in out.items():
        print(f"{name:8} {row}")
    return out


if __name__ == "__main__":
    main()
