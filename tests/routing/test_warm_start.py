"""PyVRP warm starts (``solve_from``): the polished solution is feasible and never worse than the initial one."""

from __future__ import annotations

import dataclasses
import random

import pytest

import opsrl
from opsrl.core.errors import OpsrlError
from opsrl.core.types import Status
from opsrl.routing.solvers import pyvrp_solver
from opsrl.routing.solvers.pyvrp_solver import solve_from


def _poor_start(problem: str, inst) -> object:
    """A feasible but poor solution: a shuffled tour, one customer per route, a short OP tour."""
    if problem == "tsp":
        tour = list(range(inst.num_nodes))
        random.Random(0).shuffle(tour)
        return tour
    if problem == "cvrp":
        return [[c] for c in range(inst.num_nodes - 1, 0, -1)]
    return [1]


def _no_worse(problem: str, new: float, old: float) -> bool:
    return new <= old + 1e-9 if problem != "op" else new >= old - 1e-9


@pytest.mark.parametrize(("problem", "size"), [("tsp", 12), ("cvrp", 12), ("op", 12)])
def test_polishing_a_poor_solution_improves_it(problem, size):
    inst = opsrl.generate(problem, size, seed=5)
    start = _poor_start(problem, inst)
    before = opsrl.evaluate(inst, start)
    assert before.feasible
    sol = solve_from(inst, start, time_limit=0.3, seed=0)
    after = opsrl.evaluate(inst, sol.data)
    assert sol.status is Status.FEASIBLE and after.feasible, after.violations
    assert _no_worse(problem, after.objective, before.objective)
    assert after.objective != before.objective and sol.stats["improved"] is True
    assert sol.stats["initial_objective"] == before.objective


@pytest.mark.parametrize(("problem", "size"), [("tsp", 10), ("cvrp", 10), ("op", 10)])
def test_polishing_a_good_solution_never_makes_it_worse(problem, size):
    inst = opsrl.generate(problem, size, seed=6)
    good = opsrl.solve(inst, "pyvrp", time_limit=0.3, seed=1)
    assert good.feasible
    for seed in (0, 1):
        sol = solve_from(inst, good.solution, time_limit=0.1, seed=seed, max_iterations=50)
        ev = opsrl.evaluate(inst, sol.data)
        assert ev.feasible and _no_worse(problem, ev.objective, good.objective)


def test_pyvrp_starts_from_the_given_solution(monkeypatch):
    # the initial solution reaches PyVRP with its client numbering (node k is client k - 1)
    import pyvrp

    seen = {}
    real = pyvrp.solve

    def spy(data, stop, **kwargs):
        start = kwargs["initial_solution"]
        seen["routes"] = [[a.idx + 1 for a in r if a.is_client()] for r in start.routes()]
        return real(data, stop, **kwargs)

    monkeypatch.setattr(pyvrp, "solve", spy)
    inst = opsrl.generate("cvrp", 8, seed=0)
    solve_from(inst, [[3, 1], [2, 8, 4], [5, 6, 7]], time_limit=0.05, seed=0, max_iterations=1)
    assert seen["routes"] == [[3, 1], [2, 8, 4], [5, 6, 7]]
    tsp = opsrl.generate("tsp", 6, seed=0)
    solve_from(tsp, [4, 5, 0, 2, 1, 3], time_limit=0.05, seed=0, max_iterations=1)
    assert seen["routes"] == [[2, 1, 3, 4, 5]]  # rotated to start after the depot


def test_a_worse_pyvrp_answer_keeps_the_initial_solution(monkeypatch):
    inst = opsrl.generate("tsp", 8, seed=2)
    best = opsrl.solve(inst, "scip", time_limit=1, seed=0)
    assert best.status is Status.OPTIMAL
    worst = list(range(8))
    monkeypatch.setattr(pyvrp_solver, "_solve", lambda *a, **k: ([worst[1:]], {"solver_s": 0.0}))
    sol = solve_from(inst, best.solution, time_limit=0.1, seed=0)
    assert sol.data == best.solution and sol.stats["improved"] is False


def test_infeasible_start_still_gives_a_feasible_solution():
    inst = opsrl.generate("cvrp", 10, seed=3)
    everything = [list(range(1, 11))]  # one route far over capacity
    assert not opsrl.evaluate(inst, everything).feasible
    sol = solve_from(inst, everything, time_limit=0.2, seed=0)
    assert sol.status is Status.FEASIBLE and opsrl.evaluate(inst, sol.data).feasible
    assert sol.stats["initial_objective"] is None

    op = dataclasses.replace(opsrl.generate("op", 10, seed=3), max_length=1.0)
    over = list(range(1, 11))  # far over the length budget
    sol = solve_from(op, over, time_limit=0.2, seed=0)
    assert sol.status is Status.FEASIBLE and opsrl.evaluate(op, sol.data).feasible


def test_malformed_starts_are_one_line_errors():
    inst = opsrl.generate("cvrp", 6, seed=0)
    for bad, msg in (([[1, 2], [2, 3, 4, 5, 6]], "more than once"), ([[0, 1, 2, 3, 4, 5, 6]], "out of range"),
                     ([[1, 2, 3, 4, 5, 7]], "out of range"), ([["a"]], "not a node index"), (5, "list of routes")):
        with pytest.raises(OpsrlError, match=msg) as exc:
            solve_from(inst, bad, time_limit=0.1, seed=0)
        assert "\n" not in str(exc.value)
    with pytest.raises(OpsrlError, match="not kp"):
        solve_from(opsrl.generate("kp", 5, seed=0), [0], time_limit=0.1, seed=0)
