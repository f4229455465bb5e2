"""The fixed-assignment baseline: per-item costs add up to the simulated cost, the search finds the best one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from opsrl.core.errors import UsageError
from opsrl.core.run import run_solver
from opsrl.lotsizing.problem import LotSizingSetting, decode_actions, scenario_costs, simulate
from opsrl.lotsizing.env import run_policy
from opsrl.lotsizing.static import ItemCosts, StaticAssignment, search_assignment
from tests.lotsizing.helpers import small


def three_machines() -> LotSizingSetting:
    """3 items, 3 machines with overlapping abilities: 3 * 3 * 4 = 36 assignments to enumerate."""
    return LotSizingSetting(production=np.array([[6, 5, 0], [0, 4, 6], [3, 3, 3]]), setup_costs=np.full((3, 3), 5.0),
                            setup_loss=np.ones((3, 3), dtype=int), holding_costs=np.array([0.05, 0.1, 0.02]),
                            lost_sales_costs=np.array([1.0, 1.5, 2.0]), max_inventory=np.full(3, 15),
                            horizon=15, demand={"name": "binomial", "n": 8, "p": 0.5}, n_scenarios=8,
                            scenario_seed=1, name="three")


def _all_assignments(s: LotSizingSetting):
    return [np.array(a) for a in itertools.product(*[np.flatnonzero(row) for row in s.mask])]


def test_item_costs_add_up_to_the_simulated_cost():
    s = three_machines()
    costs = ItemCosts(s, 30, seed=0)
    for a in _all_assignments(s)[::5]:
        acts = np.repeat(np.repeat(a[None, None], s.horizon, 1), 30, 0)
        sim = simulate(s, acts, costs.inventory, costs.setup, costs.demand)["total"].mean()
        parts = sum(costs.cost(i, tuple(np.flatnonzero(a == i + 1))) for i in range(s.n_items))
        assert parts == pytest.approx(sim)


def test_search_finds_the_best_assignment_on_its_scenarios():
    s = three_machines()
    found = search_assignment(s, scenarios=30, restarts=2, seed=0)
    costs = ItemCosts(s, 30, seed=0)
    best = min(sum(costs.cost(i, tuple(np.flatnonzero(a == i + 1))) for i in range(s.n_items))
               for a in _all_assignments(s))
    assert found.cost == pytest.approx(best)
    assert s.mask[np.arange(3), found.assignment].all()


def test_static_solver_never_changes_a_setup_after_the_first_period():
    s = small(horizon=12)
    r = run_solver(s, "static", time_limit=30, isolate=False)
    assert r.feasible, r.violations
    idx, parts = scenario_costs(s, r.solution)
    _, acts = decode_actions(s, r.solution)
    assert (acts == acts[:, :1]).all() and (acts[0, 0] == r.stats["assignment"]).all()
    sc = s.scenarios
    again = run_policy(StaticAssignment(np.array(r.stats["assignment"])), s, sc.inventory, sc.setup, sc.demand)
    assert np.array_equal(again, acts)
    assert r.objective == pytest.approx(parts["total"].mean())


def test_static_solver_rejects_bad_parameters():
    s = small(horizon=5)
    from opsrl.lotsizing.solvers import solve_static

    with pytest.raises(UsageError, match="scenarios"):
        solve_static(s, time_limit=None, seed=0, scenarios=0)
