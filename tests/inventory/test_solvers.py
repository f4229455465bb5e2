"""Baselines: the DP reproduces Zipkin's optima, closed form and Clark-Scarf levels, searched base-stock."""

from __future__ import annotations

import pytest

from opsrl.core.run import run_solver
from opsrl.inventory.problem import ZIPKIN, build
from opsrl.inventory.solvers import clark_scarf_levels, lost_sales_dp


@pytest.mark.parametrize("p", [4, 9, 19, 39])
@pytest.mark.parametrize("lead", [1, 2])
def test_dp_reproduces_zipkin(p, lead):
    cost, table, S, A = lost_sales_dp(float(p), 1.0, 5.0, lead)
    assert abs(cost - ZIPKIN[(p, lead)]) <= 0.005 + 1e-9
    assert table.max() <= A


SMALL = dict(test_scenarios=256, test_periods=200, test_warmup=50)


def test_dp_beats_base_stock_on_same_scenarios():
    inst = build("one_store_lost", p=9, lead_time=2, **SMALL)
    dp = run_solver(inst, "dp", time_limit=60, isolate=False)
    bs = run_solver(inst, "base-stock", time_limit=60, isolate=False)
    assert dp.feasible and bs.feasible
    assert dp.objective < bs.objective
    assert abs(dp.objective - ZIPKIN[(9, 2)]) / ZIPKIN[(9, 2)] < 0.02


def test_closed_form_backlog_matches_formula():
    inst = build("one_store_backlog", p=4, lead_time=1, **SMALL)
    res = run_solver(inst, "closed-form", time_limit=60, isolate=False)
    assert res.feasible and abs(res.objective - 3.17) / 3.17 < 0.03


def test_clark_scarf_serial():
    inst = build("serial", test_scenarios=256, test_periods=250, test_warmup=100)
    levels = clark_scarf_levels(inst)
    assert levels[0] == pytest.approx(25 + 1.6449 * 2 * 5 ** 0.5, abs=0.06)  # store: P(D > S) = h'/(p + h)
    assert list(levels) == sorted(levels)
    res = run_solver(inst, "echelon-stock", time_limit=60, isolate=False)
    assert res.feasible and abs(res.objective - 10.73) / 10.73 < 0.03


def test_solver_refuses_wrong_setting():
    from opsrl.core.errors import UsageError

    with pytest.raises(UsageError, match="one store with lost sales"):
        run_solver(build("one_store_backlog", **SMALL), "dp", time_limit=10, isolate=False)
