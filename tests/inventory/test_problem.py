"""Settings, scenario sets, overrides, setting files and evaluate (the one cost)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opsrl.core.errors import InstanceFileError, UsageError
from opsrl.inventory.problem import INVENTORY, ZIPKIN, build, decode_orders, encode_orders, scenarios


def test_builtins_and_overrides():
    inst = INVENTORY.override(INVENTORY.override(INVENTORY.builtin("one_store_lost"), "p", "19"), "lead_time", "3")
    assert inst.locations[0].penalty == 19 and inst.edges[0].lead_time == 3
    assert inst.reference.value == ZIPKIN[(19, 3)]
    for name in ("one_store_backlog", "serial", "transshipment", "one_warehouse", "many_warehouses"):
        b = INVENTORY.builtin(name)
        assert b.n_stores >= 1 and len(b.edges) >= b.n_locations
    assert build("one_warehouse", n_stores=50).n_stores == 50
    assert build("serial", n_locations=7).n_locations == 7
    with pytest.raises(UsageError, match="no parameter 'q'"):
        INVENTORY.override(inst, "q", "1")
    with pytest.raises(UsageError, match="expected a float"):
        INVENTORY.override(inst, "p", "x")


def test_scenarios_fixed_and_disjoint():
    inst = build("one_store_lost", test_scenarios=64, test_periods=20, test_warmup=5)
    a, b = scenarios(inst, "test"), scenarios(build("one_store_lost", test_scenarios=64, test_periods=20,
                                                      test_warmup=5), "test")
    assert a.shape == (64, 20, 1) and np.array_equal(a, b)
    assert not np.array_equal(scenarios(inst, "dev", 64, 20), a)
    assert abs(scenarios(inst, "train", 2048).mean() - 5.0) < 0.1


def test_correlated_demand():
    inst = build("one_warehouse", n_stores=4, dev_scenarios=4000)
    d = scenarios(inst, "dev").reshape(-1, 4)
    c = np.corrcoef(d.T)
    assert 0.4 < c[0, 1] < 0.6


def test_setting_files(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("setting: one_store_lost\np: 4\nlead_time: 2\n")
    inst = INVENTORY.load(path)[0]
    assert inst.reference.value == ZIPKIN[(4, 2)]
    hist = tmp_path / "h.csv"
    rng = np.random.default_rng(0)
    hist.write_text("a,b\n" + "\n".join(f"{x},{y}" for x, y in rng.poisson(4, (400, 2))))
    full = {"name": "two", "locations": [{"name": "s0", "role": "store", "holding": 1, "penalty": 9},
                                         {"name": "s1", "role": "store", "holding": 1, "penalty": 9},
                                         {"name": "w", "role": "warehouse", "holding": 0.3}],
            "edges": [{"src": 2, "dst": 0, "lead_time": 1}, {"src": 2, "dst": 1, "lead_time": 2},
                      {"src": -1, "dst": 2, "lead_time": 2}],
            "demand": {"kind": "history", "mean": [], "path": "h.csv"}, "periods": 30, "warmup": 10,
            "test_periods": 40, "test_warmup": 10, "test_scenarios": 8}
    (tmp_path / "n.json").write_text(json.dumps(full))
    net = INVENTORY.load(tmp_path / "n.json")[0]
    assert net.n_stores == 2 and scenarios(net, "test").shape == (8, 40, 2)
    bad = dict(full, edges=[{"src": 0, "dst": 1, "lead_time": 1}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InstanceFileError, match="ships out of a store"):
        INVENTORY.load(tmp_path / "bad.json")
    INVENTORY.save([inst], tmp_path / "back.json")
    assert INVENTORY.load(tmp_path / "back.json")[0].name == inst.name


def test_order_encoding_roundtrip():
    x = np.random.default_rng(1).uniform(0, 50, (3, 4, 2))
    back = decode_orders(encode_orders(x, False))
    assert np.abs(back - x).max() <= 0.005 + 1e-9
    k = np.rint(x)
    assert np.array_equal(decode_orders(encode_orders(k, True)), k)


def test_evaluate_checks_shape_sign_and_integrality():
    inst = build("one_store_lost", test_scenarios=16, test_periods=30, test_warmup=10)
    good = np.full((16, 30, 1), 5.0)
    ev = INVENTORY.evaluate(inst, encode_orders(good, True))
    assert ev.feasible and 3 < ev.objective < 30
    assert not INVENTORY.evaluate(inst, good[:, :10].tolist()).feasible
    assert "integers" in INVENTORY.evaluate(inst, (good + 0.5).tolist()).violations[0]
    assert "negative" in INVENTORY.evaluate(inst, (good - 10).tolist()).violations[0]
    assert not INVENTORY.evaluate(inst, {"encoding": "zlib-base64", "orders": "!!"}).feasible


@pytest.mark.parametrize("lead_time", [1, 4, 20])
def test_training_episodes_outlast_the_lead_time(lead_time):
    """Orders placed in the dev window reach their cost inside the episode, at every lead time."""
    for setting in ("one_store_backlog", "one_store_lost"):
        built = build(setting, p=4, lead_time=lead_time)
        overridden = INVENTORY.override(build(setting, p=4), "lead_time", str(lead_time))  # as --set does it
        assert (overridden.periods, overridden.warmup) == (built.periods, built.warmup)
        inst = built
        assert inst.warmup > lead_time + 1  # the start-up pipeline has flushed before costs count
        assert inst.periods - inst.warmup > lead_time + 1  # orders of the dev window land inside it
    explicit = INVENTORY.override(build("one_store_backlog", p=4), "periods", "70")
    assert INVENTORY.override(explicit, "lead_time", str(lead_time)).periods == 70  # a size set by hand stays
