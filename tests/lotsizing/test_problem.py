"""Settings, scenarios, file io, the solution encoding and evaluate's feasibility checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opsrl.core.errors import InstanceFileError, UsageError
from opsrl.lotsizing.problem import BUILTIN_SEEDS, LotSizing, decode_actions, encode_actions, generate_setting
from tests.lotsizing.helpers import tiny

P = LotSizing()


@pytest.mark.parametrize("name", list(BUILTIN_SEEDS))
def test_builtin_settings_have_the_paper_shapes_and_laws(name):
    s = P.builtin(name)
    n, m = (int(v) for v in name.split("x"))
    assert (s.n_items, s.n_machines, s.horizon, s.scenarios.count) == (n, m, 100, 100)
    assert set(np.unique(s.lost_sales_costs)) <= {0.1, 1.1} and np.all(s.holding_costs == 0.01)
    assert s.production.max() <= 40 and (s.production > 0).any(axis=0).all()  # every item has a machine
    assert s.setup_costs.min() >= 15 and s.setup_costs.max() <= 30 and set(np.unique(s.setup_loss)) <= {1, 2, 3}
    assert np.all(s.max_inventory == 100)


def test_generation_and_scenarios_are_reproducible():
    a, b = P.builtin("15x5"), P.builtin("15x5")
    assert np.array_equal(a.production, b.production)
    assert np.array_equal(a.scenarios.demand, b.scenarios.demand)
    assert not np.array_equal(generate_setting(15, 5, 1).production, generate_setting(15, 5, 2).production)
    sc = a.scenarios
    assert sc.demand.shape == (100, 100, 15) and 7.5 < sc.demand.mean() < 8.5  # Binomial(20, 0.4)
    assert np.all(a.mask[np.arange(5)[:, None], sc.setup.T] )  # initial setups are producible


def test_json_round_trip(tmp_path):
    s = P.builtin("20x10")
    P.save([s], tmp_path / "s.json")
    (back,) = P.load(tmp_path / "s.json")
    for field in ("production", "setup_costs", "setup_loss", "holding_costs", "lost_sales_costs", "max_inventory"):
        assert np.array_equal(getattr(s, field), getattr(back, field))
    assert back.name == "20x10" and np.array_equal(back.scenarios.demand, s.scenarios.demand)


def test_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"machine_production": [[1, 2]], "setup_costs": [[1, 2, 3]]}))
    with pytest.raises(InstanceFileError, match="setup_costs.*shape"):
        P.load(bad)
    bad.write_text("{oops")
    with pytest.raises(InstanceFileError, match="not valid JSON"):
        P.load(bad)
    d = tiny().to_dict()
    d["demand_distribution"] = {"name": "gamma"}
    bad.write_text(json.dumps(d))
    with pytest.raises(InstanceFileError, match="demand_distribution"):
        P.load(bad)


def test_override_and_its_errors():
    s = P.override(tiny(), "n_scenarios", "7")
    assert s.scenarios.count == 7
    with pytest.raises(UsageError, match="no field"):
        P.override(s, "colour", "red")
    with pytest.raises(UsageError, match="positive integer"):
        P.override(s, "horizon", "0")


def test_encode_decode_round_trip():
    s = tiny()
    acts = np.random.default_rng(0).integers(0, 3, (3, s.horizon, 1))
    idx, back = decode_actions(s, encode_actions(s, acts))
    assert np.array_equal(back, acts) and idx.tolist() == [0, 1, 2]
    idx, back = decode_actions(s, {"actions": acts[:1].tolist(), "scenarios": [2]})
    assert idx.tolist() == [2] and np.array_equal(back, acts[:1])


def test_evaluate_rejects_infeasible_or_malformed_decisions():
    s = tiny(production=np.array([[5, 0]]))
    ok = np.ones((3, s.horizon, 1), dtype=int)
    assert P.evaluate(s, encode_actions(s, ok)).feasible
    bad = ok.copy()
    bad[1, 2, 0] = 2  # the machine cannot make item 2
    ev = P.evaluate(s, encode_actions(s, bad))
    assert not ev.feasible and "cannot produce item 2" in ev.violations[0]
    assert not P.evaluate(s, {"actions": [[[1]] * 2] * 3}).feasible  # wrong horizon
    assert not P.evaluate(s, [1, 2]).feasible
    assert not P.evaluate(s, {"actions": ok[:1].tolist(), "scenarios": [9]}).feasible


def test_evaluate_is_the_mean_of_simulated_costs():
    s = tiny(n_scenarios=2)
    idle = np.zeros((2, s.horizon, 1), dtype=int)
    sc = s.scenarios
    # idling: cost is lost sales on demand beyond the initial stock plus holding of what is left
    expect = []
    for k in range(2):
        inv, total = sc.inventory[k].astype(float), 0.0
        for t in range(s.horizon):
            net = inv - sc.demand[k, t]
            total += float((np.maximum(-net, 0) * s.lost_sales_costs).sum())
            inv = np.clip(net, 0, s.max_inventory)
            total += float((inv * s.holding_costs).sum())
        expect.append(total)
    assert P.evaluate(s, encode_actions(s, idle)).objective == pytest.approx(np.mean(expect))
