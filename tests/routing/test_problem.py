"""Generators follow the community conventions and reproduce; evaluate catches every violation."""

import itertools

import numpy as np
import pytest

import opsrl
from opsrl.routing.problem import CVRP_CAPACITY, OP_MAX_LENGTH


@pytest.mark.parametrize("problem", ["tsp", "cvrp", "op", "kp"])
def test_generators_reproduce_with_a_seed(problem):
    a = opsrl.generate(problem, 20, seed=7, count=3)
    b = opsrl.generate(problem, 20, seed=7, count=3)
    c = opsrl.generate(problem, 20, seed=8, count=3)
    field = "values" if problem == "kp" else "coords"
    for x, y in zip(a, b):
        assert np.array_equal(getattr(x, field), getattr(y, field))
    assert not np.array_equal(getattr(a[0], field), getattr(a[1], field))
    assert not np.array_equal(getattr(a[0], field), getattr(c[0], field))


@pytest.mark.parametrize("size", sorted(CVRP_CAPACITY))
def test_cvrp_convention(size):
    inst = opsrl.generate("cvrp", size, seed=0)
    assert inst.coords.shape == (size + 1, 2) and inst.capacity == CVRP_CAPACITY[size]
    assert inst.demands[0] == 0 and inst.demands[1:].min() >= 1 and inst.demands[1:].max() <= 9
    assert 0 <= inst.coords.min() and inst.coords.max() <= 1


@pytest.mark.parametrize("size", sorted(OP_MAX_LENGTH))
def test_op_convention_prizes_by_distance(size):
    inst = opsrl.generate("op", size, seed=1)
    assert inst.max_length == OP_MAX_LENGTH[size]
    d0 = np.linalg.norm(inst.coords - inst.coords[0], axis=1)
    assert inst.prizes[0] == 0
    assert inst.prizes[np.argmax(d0)] == pytest.approx(1.0)  # the farthest node is worth 100/100
    assert np.all(np.diff(inst.prizes[1:][np.argsort(d0[1:])]) >= 0)  # prize grows with distance
    assert set(np.round(inst.prizes[1:] * 100, 6)) <= set(range(1, 101))


def test_kp_convention():
    inst = opsrl.generate("kp", 100, seed=0)
    assert inst.capacity == 20_000
    assert inst.values.min() >= 1 and inst.values.max() <= 999 and inst.weights.max() <= 999


def test_tsp_evaluate_catches_violations_and_costs_the_closed_tour():
    inst = opsrl.generate("tsp", 5, seed=0)
    d = inst.distances
    tour = [0, 2, 4, 1, 3]
    ev = opsrl.evaluate(inst, tour)
    assert ev.feasible and ev.objective == pytest.approx(sum(d[a, b] for a, b in zip(tour, tour[1:] + tour[:1])))
    assert "never visited" in opsrl.evaluate(inst, [0, 1, 2, 3]).violations[0]
    assert any("more than once" in v for v in opsrl.evaluate(inst, [0, 1, 2, 3, 3]).violations)
    assert "out of range" in opsrl.evaluate(inst, [0, 1, 2, 3, 9]).violations[0]
    assert not opsrl.evaluate(inst, "0 1 2").feasible


def test_cvrp_evaluate_catches_each_kind_of_infeasibility():
    inst = opsrl.get_problem("cvrp").override(opsrl.generate("cvrp", 4, seed=0), "capacity", "100")
    ok = opsrl.evaluate(inst, [[1, 2], [3, 4]])
    assert ok.feasible
    d = inst.distances
    assert ok.objective == pytest.approx(d[0, 1] + d[1, 2] + d[2, 0] + d[0, 3] + d[3, 4] + d[4, 0])
    assert any("never visited" in v for v in opsrl.evaluate(inst, [[1, 2], [3]]).violations)
    assert any("more than once" in v for v in opsrl.evaluate(inst, [[1, 2], [3, 4, 1]]).violations)
    assert any("depot" in v for v in opsrl.evaluate(inst, [[1, 0, 2], [3, 4]]).violations)
    tight = opsrl.get_problem("cvrp").override(inst, "capacity", str(int(inst.demands.max())))
    over = opsrl.evaluate(tight, [[1, 2, 3, 4]])
    assert not over.feasible and any("above the capacity" in v for v in over.violations)


def test_op_evaluate_budget_and_duplicates():
    inst = opsrl.generate("op", 10, seed=2)
    d = inst.distances
    ev = opsrl.evaluate(inst, [3])
    assert ev.feasible == (d[0, 3] * 2 <= inst.max_length) and ev.objective == pytest.approx(inst.prizes[3])
    long_tour = list(range(1, 11))
    tiny = opsrl.get_problem("op").override(inst, "max_length", "0.01")
    assert any("exceeds the budget" in v for v in opsrl.evaluate(tiny, long_tour).violations)
    assert any("more than once" in v for v in opsrl.evaluate(inst, [1, 1]).violations)
    assert "depot 0 is implicit" in opsrl.evaluate(inst, [0, 1]).violations[0]
    assert opsrl.evaluate(inst, []).objective == 0 and opsrl.evaluate(inst, []).feasible


def test_kp_evaluate_capacity_and_brute_force_values():
    inst = opsrl.generate("kp", 6, seed=4)
    best = max((sum(inst.values[list(s)]) for r in range(7) for s in itertools.combinations(range(6), r)
                if sum(inst.weights[list(s)]) <= inst.capacity), default=0)
    assert best == inst.values.sum()  # capacity 20000 holds all 6 items
    small = opsrl.get_problem("kp").override(inst, "capacity", "10")
    assert not opsrl.evaluate(small, [0, 1, 2]).feasible
    assert any("more than once" in v for v in opsrl.evaluate(inst, [1, 1]).violations)


def test_set_overrides_fields_and_rejects_unknown():
    from opsrl.core.errors import UsageError

    prob = opsrl.get_problem("cvrp")
    inst = prob.override(opsrl.generate("cvrp", 10, seed=0), "capacity", "25")
    assert inst.capacity == 25
    assert prob.override(inst, "reference", "12.5").reference.value == 12.5
    with pytest.raises(UsageError, match="no field 'colour'"):
        prob.override(inst, "colour", "red")
    with pytest.raises(UsageError, match="expected a float"):
        prob.override(inst, "capacity", "lots")
