"""Tiny lot-sizing settings for the tests."""

from __future__ import annotations

import numpy as np

from opsrl.lotsizing.problem import LotSizingSetting


def tiny(horizon: int = 6, n_scenarios: int = 3, holding: float = 0.5, **kw) -> LotSizingSetting:
    """2 items, 1 machine: rates 5 and 3, setup costs 10 and 20, setup losses 1 and 2, cap 6."""
    base = dict(production=np.array([[5, 3]]), setup_costs=np.array([[10.0, 20.0]]), setup_loss=np.array([[1, 2]]),
                holding_costs=np.array([holding, 2 * holding]), lost_sales_costs=np.array([2.0, 3.0]),
                max_inventory=np.array([6, 6]), horizon=horizon, demand={"name": "uniform", "low": 0, "high": 3},
                n_scenarios=n_scenarios, scenario_seed=5, name="tiny")
    base.update(kw)
    return LotSizingSetting(**base)


def small(horizon: int = 20) -> LotSizingSetting:
    """3 items, 2 machines (machine 1 cannot make item 3): a setting a policy learns in seconds."""
    return LotSizingSetting(production=np.array([[6, 5, 0], [0, 4, 6]]), setup_costs=np.full((2, 3), 5.0),
                            setup_loss=np.ones((2, 3), dtype=int), holding_costs=np.full(3, 0.05),
                            lost_sales_costs=np.array([1.0, 1.0, 2.0]), max_inventory=np.full(3, 20),
                            horizon=horizon, demand={"name": "binomial", "n": 6, "p": 0.5}, n_scenarios=8,
                            scenario_seed=1, name="small")
