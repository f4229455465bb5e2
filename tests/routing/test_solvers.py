"""The routing solvers: every one answers feasibly, the exact ones are exact, and the wrappers map
the libraries' answers back to opsrl's solution formats correctly. Time limits stay at 1 s or less."""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys

import numpy as np
import pytest

import opsrl
from opsrl.core.registry import get_solver
from opsrl.core.types import Status
from opsrl.routing.distances import integer_matrix

PROBLEM_SIZES = {"tsp": 12, "cvrp": 15, "op": 15, "kp": 12}


def _pairs() -> list[tuple[str, str]]:
    return [(p, s) for p in PROBLEM_SIZES for s in opsrl.list_solvers(p)]


def _tour_length(dist: np.ndarray, nodes: list[int]) -> float:
    return float(sum(dist[a, b] for a, b in zip(nodes, nodes[1:] + nodes[:1])))


@pytest.mark.parametrize(("problem", "solver"), _pairs())
def test_every_solver_returns_a_feasible_solution(problem: str, solver: str) -> None:
    spec = get_solver(problem, solver)
    if spec.needs_torch:
        pytest.skip("neural policies are tested with their weights elsewhere")
    if solver == "lkh":
        pytest.importorskip("elkai")
    inst = opsrl.generate(problem, PROBLEM_SIZES[problem], seed=3)
    result = opsrl.solve(inst, solver, time_limit=1, seed=0)
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE), result.message
    assert result.feasible, result.violations
    check = opsrl.evaluate(inst, result.solution)
    assert check.feasible and math.isclose(check.objective, result.objective)
    if problem in ("op", "kp"):
        assert result.objective > 0  # something worth collecting always fits on these instances
    assert result.wall_s < 1 + 5 + 0.2  # within the harness's grace


def _brute_force_tsp(inst) -> float:
    d, n = inst.distances, inst.num_nodes
    return min(_tour_length(d, [0, *perm]) for perm in itertools.permutations(range(1, n)))


@pytest.mark.parametrize("size", [7, 8])
def test_scip_proves_the_tsp_optimum(size: int) -> None:
    inst = opsrl.generate("tsp", size, seed=11)
    result = opsrl.solve(inst, "scip", time_limit=2, seed=0)
    assert result.status is Status.OPTIMAL and result.feasible
    best = _brute_force_tsp(inst)
    assert result.objective == pytest.approx(best, rel=1e-9)
    assert result.stats["bound"] == pytest.approx(best, rel=1e-6)
    assert result.stats["nodes"] >= 0 and result.stats["solver_s"] < 2


def test_scip_tsp_on_a_larger_instance_is_optimal_and_no_worse_than_the_heuristics() -> None:
    inst = opsrl.generate("tsp", 30, seed=5)
    exact = opsrl.solve(inst, "scip", time_limit=2, seed=0)
    heuristic = opsrl.solve(inst, "ortools", time_limit=0.5, seed=0)
    assert exact.status is Status.OPTIMAL and exact.feasible
    assert exact.objective <= heuristic.objective + 1e-9
    assert exact.stats["bound"] == pytest.approx(exact.objective, rel=1e-6)


def test_scip_tsp_at_the_limit_is_a_timeout() -> None:
    inst = opsrl.generate("tsp", 250, seed=0)
    result = opsrl.solve(inst, "scip", time_limit=0.3, seed=0)
    assert result.status is Status.TIMEOUT
    assert result.solution is None or result.feasible


def _brute_force_kp(inst) -> float:
    n, best = inst.size, 0.0
    for mask in range(1 << n):
        chosen = [i for i in range(n) if mask >> i & 1]
        if inst.weights[chosen].sum() <= inst.capacity:
            best = max(best, float(inst.values[chosen].sum()))
    return best


@pytest.mark.parametrize("solver", ["scip", "ortools"])
@pytest.mark.parametrize("size", [10, 12])
def test_exact_knapsack_solvers_match_brute_force(solver: str, size: int) -> None:
    inst = opsrl.generate("kp", size, seed=2)
    # a binding capacity: about a third of the total weight
    inst = dataclasses.replace(inst, capacity=float(inst.weights.sum() // 3))
    result = opsrl.solve(inst, solver, time_limit=1, seed=0)
    assert result.status is Status.OPTIMAL and result.feasible
    assert result.objective == _brute_force_kp(inst)
    if solver == "scip":
        assert result.stats["bound"] == pytest.approx(result.objective)


def _cvrp_file(root):
    path = root / "cvrplib-x" / "X-n101-k25.vrp"
    if not path.is_file():
        pytest.skip(f"{path} is missing from the data folder")
    return opsrl.load_instance(path)


@pytest.mark.parametrize("solver", ["hgs", "pyvrp"])
def test_cvrp_file_instance_is_solved_feasibly_and_well(solver: str, shared_data) -> None:
    inst = _cvrp_file(shared_data)
    assert inst.integral and inst.reference is not None
    result = opsrl.solve(inst, solver, time_limit=1, seed=0)
    assert result.feasible, result.violations
    assert result.objective == int(result.objective)  # nint distances: a whole-number cost
    # measured at 1 s: HGS 0.07 %, PyVRP 2.1 % (bounds leave room for a loaded machine)
    assert 0 <= result.gap_pct < {"hgs": 2.0, "pyvrp": 8.0}[solver]


@pytest.mark.parametrize("problem", ["cvrp", "tsp"])
def test_pyvrp_client_indices_map_back_to_nodes(problem: str) -> None:
    # PyVRP's own cost of its routes equals our integer cost of the routes we return: a shifted
    # or permuted client index would cost differently.
    inst = opsrl.generate(problem, 20, seed=4)
    result = opsrl.solve(inst, "pyvrp", time_limit=0.5, seed=0)
    assert result.feasible
    dist, _ = integer_matrix(inst.distances, inst.integral)
    routes = result.solution if problem == "cvrp" else [result.solution[1:]]
    if problem == "tsp":
        assert result.solution[0] == 0
    ours = sum(_tour_length(dist, [0, *r]) for r in routes)
    assert ours == result.stats["objective_int"]


@pytest.mark.parametrize("solver", ["pyvrp", "ortools"])
def test_op_solvers_respect_a_binding_length_budget(solver: str) -> None:
    inst = dataclasses.replace(opsrl.generate("op", 20, seed=6), max_length=1.0)
    result = opsrl.solve(inst, solver, time_limit=1, seed=0)
    assert result.feasible and result.status is Status.FEASIBLE
    tour = result.solution
    assert tour and 0 not in tour and len(set(tour)) == len(tour)
    assert _tour_length(inst.distances, [0, *tour]) <= 1.0
    # a budget this tight cannot take every node, yet it collects more than any single node alone
    assert len(tour) < inst.size
    assert result.objective > float(inst.prizes.max())


@pytest.mark.parametrize("solver", ["pyvrp", "ortools"])
def test_op_with_no_reachable_node_returns_the_empty_tour(solver: str) -> None:
    inst = dataclasses.replace(opsrl.generate("op", 10, seed=1), max_length=1e-3)
    result = opsrl.solve(inst, solver, time_limit=0.5, seed=0)
    assert result.feasible and result.solution == [] and result.objective == 0.0


def test_pyvrp_same_seed_same_answer() -> None:
    inst = opsrl.generate("cvrp", 20, seed=8)
    params = {"max_iterations": 300}  # an iteration cap, so the run does not depend on machine speed
    a = opsrl.solve(inst, "pyvrp", time_limit=1, seed=7, params=params)
    b = opsrl.solve(inst, "pyvrp", time_limit=1, seed=7, params=params)
    assert a.feasible and b.feasible
    assert a.objective == b.objective and a.solution == b.solution


def test_hgs_on_a_single_customer() -> None:
    inst = opsrl.generate("cvrp", 1, seed=0)
    result = opsrl.solve(inst, "hgs", time_limit=0.5, seed=0)
    assert result.feasible and result.solution == [[1]]


def test_lkh_without_elkai_reports_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "elkai", None)  # makes `import elkai` raise ImportError
    spec = get_solver("tsp", "lkh")
    sol = spec.fn(opsrl.generate("tsp", 8, seed=0), time_limit=1, seed=0)
    assert sol.status is Status.ERROR and "opsrl[lkh]" in sol.message


def test_lkh_runs_option_is_declared() -> None:
    spec = get_solver("tsp", "lkh")
    assert spec.params()["runs"].default == 1
    assert spec.check_params({"runs": "3"}) == {"runs": 3}
