"""Stage LP: duals match finite differences; in-place updates give the same answer as a fresh build;
SDDP meets the exact scenario-tree optimum on case3."""

import numpy as np
import pytest

from opsrl.hydro.lp import DispatchLP, scenario_tree_value
from opsrl.hydro.problem import builtin_instance, synthetic_system
from opsrl.hydro.sddp import SDDP


def _obj(system, v_in, w, target):
    lp = DispatchLP(system, targets=True)
    lp.set_state(v_in)
    lp.set_inflows(w)
    lp.set_targets(target)
    return lp.solve()


@pytest.mark.parametrize("reach", ["met", "unmet"])
def test_duals_match_finite_differences(reach):
    s = synthetic_system(3)
    w = s.inflow_support[5, 2]
    v_in = 0.5 * s.vmax
    # a target just below the start (met) or far above anything reachable in one stage (unmet)
    target = v_in * 0.95 if reach == "met" else s.vmax * 0.999
    r = _obj(s, v_in, w, target)
    eps = 1e-4 * s.vmax
    for i in range(s.n_hydro):
        e = np.zeros(s.n_hydro)
        e[i] = eps[i]
        d_target = (_obj(s, v_in, w, target + e).objective - _obj(s, v_in, w, target - e).objective) / (2 * eps[i])
        d_state = (_obj(s, v_in + e, w, target).objective - _obj(s, v_in - e, w, target).objective) / (2 * eps[i])
        assert r.dual_target[0, i] == pytest.approx(d_target, rel=1e-5, abs=1e-6)
        assert r.dual_balance[0, i] == pytest.approx(d_state, rel=1e-5, abs=1e-6)
    if reach == "unmet":
        assert r.slack.max() > 1e-3


def test_updates_in_place_match_a_fresh_build():
    s = synthetic_system(1)
    lp = DispatchLP(s, targets=True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        v_in = rng.uniform(s.vmin, s.vmax)
        w = s.inflow_support[rng.integers(52), rng.integers(10)]
        target = rng.uniform(s.vmin, s.vmax)
        lp.set_state(v_in)
        lp.set_inflows(w)
        lp.set_targets(target)
        assert lp.solve().objective == pytest.approx(_obj(s, v_in, w, target).objective, rel=1e-9)


def test_multi_stage_lp_equals_the_sum_of_chained_stages_with_targets(shared_data):
    inst = builtin_instance("case3")
    s, T = inst.system, 4
    w = inst.test_paths()[0, :T]
    de = DispatchLP(s, T, targets=True)
    de.set_state(s.v0)
    de.set_inflows(w)
    targets = np.array([[0.2], [0.1], [0.3], [0.0]])
    de.set_targets(targets)
    total = de.solve().objective
    v, chained = s.v0, 0.0
    for t in range(T):
        r = _obj(s, v, w[t], targets[t])
        chained += r.objective
        v = r.v[0]
    assert total <= chained + 1e-6  # the joint LP can trade slack across stages; never worse


def test_sddp_lower_bound_meets_the_scenario_tree_optimum(shared_data):
    s = builtin_instance("case3").system
    exact = scenario_tree_value(s, 4)
    algo = SDDP(s, 4, seed=0)
    algo.train(150)
    assert algo.log.lower_bounds[-1] == pytest.approx(exact, rel=1e-7)
    assert all(b <= exact * (1 + 1e-9) for b in algo.log.lower_bounds)
    assert np.all(np.diff(algo.log.lower_bounds) >= -1e-6 * exact)


def test_a_repeated_benders_cut_is_not_added_twice():
    """Repeated cuts make the stage LP degenerate (GLOP stalled for minutes on Bolivia): the LP keeps one."""
    system = synthetic_system(seed=0)
    lp = DispatchLP(system, 1, future_cost=True)
    pi = np.linspace(-3.0, -1.0, system.n_hydro)
    assert lp.add_cut(100.0, pi)
    assert not lp.add_cut(100.0 * (1 + 1e-9), pi.copy())  # the same cut up to round-off
    assert lp.add_cut(101.0, pi) and lp.add_cut(100.0, pi * 2)  # a different cut is kept
    assert len(lp.cuts) == 3
    lp.set_state(system.v0)
    lp.set_inflows(np.ones(system.n_hydro))
    r = lp.solve()
    assert r.objective >= 101.0 + float(pi @ r.v[0]) - 1e-6  # the future cost honours the cuts
