"""The dynamics on hand-computed cases: setups, losses, caps, lost sales, masks, the post-decision split."""

from __future__ import annotations

import numpy as np
import pytest

from opsrl.lotsizing.env import BatchEnv, LotSizingEnv, demand_step, features, post_decision
from tests.lotsizing.helpers import tiny


def test_keep_setup_produces_without_setup_cost():
    s = tiny()
    post, setup, cost = post_decision(s, np.array([[2, 0]]), np.array([[1]]), np.array([[1]]))
    assert post.tolist() == [[7, 0]] and setup.tolist() == [[1]] and cost.tolist() == [0.0]
    inv, lost, hold = demand_step(s, post, np.array([[3, 1]]))
    assert inv.tolist() == [[4, 0]]  # item 2 short by one unit: lost, no backlog
    assert lost.tolist() == [3.0] and hold.tolist() == [2.0]  # 1 unit x 3.0; 4 units x 0.5


def test_changeover_pays_setup_cost_and_loses_units():
    s = tiny()
    post, setup, cost = post_decision(s, np.array([[4, 0]]), np.array([[1]]), np.array([[2]]))
    assert post.tolist() == [[4, 1]] and setup.tolist() == [[2]] and cost.tolist() == [20.0]  # 3 - 2 lost


def test_idle_loses_setup_so_restart_pays_again():
    s = tiny()
    post, setup, cost = post_decision(s, np.array([[0, 0]]), np.array([[1]]), np.array([[0]]))
    assert post.tolist() == [[0, 0]] and setup.tolist() == [[0]] and cost.tolist() == [0.0]
    post, setup, cost = post_decision(s, post, setup, np.array([[1]]))
    assert post.tolist() == [[4, 0]] and cost.tolist() == [10.0]


def test_inventory_above_cap_vanishes_after_demand():
    s = tiny()
    inv, lost, hold = demand_step(s, np.array([[9, 6]]), np.array([[1, 0]]))
    assert inv.tolist() == [[6, 6]] and lost.tolist() == [0.0] and hold.tolist() == [6 * 0.5 + 6 * 1.0]


def test_setup_loss_never_makes_negative_production():
    s = tiny(setup_loss=np.array([[9, 9]]))
    post, _, cost = post_decision(s, np.array([[1, 1]]), np.array([[0]]), np.array([[2]]))
    assert post.tolist() == [[1, 1]] and cost.tolist() == [20.0]


def test_machine_cannot_take_a_masked_choice():
    s = tiny(production=np.array([[5, 0]]))
    assert s.mask.tolist() == [[True, True, False]]
    with pytest.raises(ValueError, match="cannot take choice 2"):
        post_decision(s, np.array([[0, 0]]), np.array([[1]]), np.array([[2]]))
    with pytest.raises(ValueError, match="cannot take choice 3"):
        post_decision(s, np.array([[0, 0]]), np.array([[1]]), np.array([[3]]))


def test_batch_step_is_post_decision_then_demand_step():
    import copy

    from opsrl.lotsizing.problem import sample_demand

    s = tiny()
    env = BatchEnv(s, 4, np.random.default_rng(0))
    inv0, setup0 = env.inventory.copy(), env.setup.copy()
    action = np.array([[1], [2], [0], [1]])
    post_a = post_decision(s, inv0, setup0, action)
    post_b = post_decision(s, inv0, setup0, action)
    assert all(np.array_equal(a, b) for a, b in zip(post_a, post_b))  # no randomness before demand
    rng = copy.deepcopy(env.rng)
    out = env.step(action)
    inv, lost, hold = demand_step(s, post_a[0], sample_demand(s.demand, rng, (4, 2)))
    assert np.array_equal(out["post_inventory"], post_a[0]) and np.array_equal(env.inventory, inv)
    assert np.allclose(out["setup_cost"], post_a[2]) and np.allclose(out["lost_cost"], lost)
    assert np.allclose(out["cost"], post_a[2] + lost + hold)


def test_single_env_wrapper_runs_an_episode():
    s = tiny(horizon=4)
    env = LotSizingEnv(s, seed=3)
    obs, info = env.reset(seed=3)
    assert obs["inventory"].shape == (2,) and info["action_mask"].shape == (1, 3)
    total, done, steps = 0.0, False, 0
    while not done:
        obs, reward, done, truncated, info = env.step([1])
        assert reward == pytest.approx(-(info["setup_cost"] + info["lost_sales_cost"] + info["holding_cost"]))
        assert not truncated and np.all(info["post_inventory"] >= obs["inventory"])
        steps += 1
    assert steps == 4
    with pytest.raises(RuntimeError):
        env.step([1])
    fresh = LotSizingEnv(s)
    fresh.reset(seed=0)
    with pytest.raises(ValueError, match="one choice per machine"):
        fresh.step([1, 1])
    with pytest.raises(ValueError, match="cannot take choice 3"):
        fresh.step([3])

def test_features_layout():
    s = tiny()
    x = features(s, np.array([[3, 6]]), np.array([[2]]))
    assert x.tolist() == [[0.5, 1.0, 0.0, 0.0, 1.0]]
