"""Decoding with BQ policies of random weights: every mode returns feasible solutions in opsrl's format,
beam search is exact when wide enough, normalisation makes units irrelevant, and the ``bq`` solver
runs through the harness."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time

import numpy as np
import pytest

import opsrl
from opsrl.core.errors import UsageError
from opsrl.core.types import Status

torch = pytest.importorskip("torch")

from tests.routing.neural_helpers import one_thread, tiny  # noqa: E402,F401

from opsrl.core.checkpoint import save_checkpoint  # noqa: E402
from opsrl.routing.bq import static_from_instances  # noqa: E402
from opsrl.routing.decode import beam_search, decode, decode_details, greedy_choice, log_likelihood, rollout  # noqa: E402
from opsrl.routing.instances import CVRPInstance, OPInstance  # noqa: E402
from opsrl.routing.policy import BQPolicy, PolicyConfig  # noqa: E402


SIZES = {"tsp": 10, "cvrp": 10, "op": 10, "kp": 12}


def instances(problem: str, count: int = 4, seed: int = 1) -> list:
    insts = opsrl.generate(problem, SIZES[problem], seed=seed, count=count)
    if problem == "kp":  # about half of the 12 items fit: the choice matters
        insts = [dataclasses.replace(i, capacity=3000.0) for i in insts]
    return insts


def assert_feasible(insts: list, sols: list) -> list[float]:
    objectives = []
    for inst, sol in zip(insts, sols):
        ev = opsrl.evaluate(inst, sol)
        assert ev.feasible, (inst.name, sol, ev.violations)
        objectives.append(ev.objective)
    return objectives


@pytest.mark.parametrize("problem", list(SIZES))
@pytest.mark.parametrize("mode", [{}, {"beam": 3}, {"samples": 4}])
def test_random_policy_decodes_feasible_solutions(problem: str, mode: dict) -> None:
    insts = instances(problem)
    solutions = decode(tiny(problem), insts, **mode)
    objectives = assert_feasible(insts, solutions)
    if problem in ("op", "kp"):
        assert min(objectives) > 0
    if problem == "op":  # a tour ends only when no unvisited node fits in what is left of the budget
        for inst, tour in zip(insts, solutions):
            d, path = inst.distances, [0, *tour]
            left = inst.max_length - sum(d[a, b] for a, b in zip(path[:-1], path[1:]))
            assert all(d[path[-1], v] + d[v, 0] > left + 1e-9 for v in set(range(1, inst.num_nodes)) - set(tour))


@pytest.mark.parametrize("problem", ["tsp", "cvrp", "op"])
def test_knn_restriction_stays_feasible(problem: str) -> None:
    insts = instances(problem)
    policy = tiny(problem)
    assert_feasible(insts, decode(policy, insts, knn=3))
    assert_feasible(insts, decode(policy, insts, knn=3, beam=3))


@pytest.mark.parametrize("problem", list(SIZES))
def test_beam_and_samples_are_never_worse_than_greedy(problem: str) -> None:
    insts = instances(problem, count=6, seed=2)
    policy = tiny(problem, seed=3)
    sign = 1 if opsrl.get_problem(problem).sense == "min" else -1
    greedy = assert_feasible(insts, decode(policy, insts))
    for mode in ({"beam": 4}, {"samples": 8}):
        found = assert_feasible(insts, decode(policy, insts, **mode))
        assert all(sign * f <= sign * g + 1e-9 for f, g in zip(found, greedy))


def test_wide_beam_finds_the_most_likely_tour_and_greedy_scores_match() -> None:
    inst = opsrl.generate("tsp", 6, seed=4)
    policy = tiny("tsp", seed=5)
    tours = [[0, *p] for p in itertools.permutations(range(1, 6))]  # all 120 paths from node 0
    scores = log_likelihood(policy, [inst] * len(tours), tours, precision="fp32")  # as rollout and beam_search
    assert np.exp(scores).sum() == pytest.approx(1.0, rel=1e-4)  # a distribution over all tours
    static = static_from_instances("tsp", [inst])
    beams = beam_search(policy, static, width=len(tours))  # no partial path is ever pruned
    assert beams.logp.max() == pytest.approx(scores.max(), abs=1e-5)
    greedy = rollout(policy, static, greedy_choice)
    assert greedy.logp[0] == pytest.approx(log_likelihood(policy, [inst], greedy.solutions("tsp"),
                                                                   precision="fp32")[0], abs=1e-5)
    assert beams.logp.max() >= greedy.logp[0] - 1e-9
    small = beam_search(policy, static, width=3)
    assert small.logp.max() <= scores.max() + 1e-9
    assert log_likelihood(policy, [inst, inst], [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4]]).tolist()[1] == -math.inf


def test_bf16_decoding_gives_feasible_solutions_close_to_fp32() -> None:
    """The autocast path (bf16 on CPUs that have it, and on CUDA) runs the same policy: the origin and
    destination markers are cast to the activations' dtype, and the solutions stay feasible."""
    for problem in ("tsp", "cvrp", "op", "kp"):
        insts, policy = instances(problem, count=6), tiny(problem, seed=2)
        full = assert_feasible(insts, decode(policy, insts, precision="fp32"))
        half = assert_feasible(insts, decode(policy, insts, precision="bf16"))
        assert np.mean(half) == pytest.approx(np.mean(full), rel=0.2)
        stats = decode_details(policy, insts, precision="bf16").stats
        assert stats["precision"] == "bf16"
    with pytest.raises(UsageError, match="unknown precision 'half'"):
        decode(tiny("tsp"), instances("tsp"), precision="half")


def test_auto_precision_trains_in_fp32_on_the_cpu() -> None:
    from opsrl.core.device import amp_dtype, native_bf16

    assert amp_dtype("cpu", "auto", training=True) is None
    assert amp_dtype("cpu", "fp32") is None and amp_dtype("cpu", "bf16") is torch.bfloat16
    assert amp_dtype("cpu", "auto") is (torch.bfloat16 if native_bf16("cpu") else None)


def test_normalisation_makes_units_irrelevant() -> None:
    unit = opsrl.generate("cvrp", 12, seed=6)
    big = dataclasses.replace(unit, coords=unit.coords * 1000.0 + 250.0)
    policy = tiny("cvrp")
    (a,), (b,) = decode(policy, [unit]), decode(policy, [big])
    assert a == b
    assert opsrl.evaluate(big, b).objective == pytest.approx(1000.0 * opsrl.evaluate(unit, a).objective)


def test_cvrplib_like_instance_is_costed_in_its_own_units() -> None:
    rng = np.random.default_rng(7)
    coords = rng.integers(0, 1001, (13, 2)).astype(float)
    demands = np.concatenate([[0], rng.integers(1, 40, 12)])
    inst = CVRPInstance(coords=coords, demands=demands, capacity=100.0, edge_weight_type="EUC_2D", name="X-like")
    for sol in (decode(tiny("cvrp"), [inst])[0], decode(tiny("cvrp"), [inst], beam=3)[0]):
        ev = opsrl.evaluate(inst, sol)
        assert ev.feasible and ev.objective == int(ev.objective) and ev.objective > 1000


def test_op_with_rounded_distances_stays_within_budget() -> None:
    rng = np.random.default_rng(8)
    coords = rng.integers(0, 101, (11, 2)).astype(float)
    inst = OPInstance(coords=coords, prizes=np.r_[0, rng.integers(1, 10, 10)], max_length=150.0,
                      edge_weight_type="CEIL_2D")
    for sol in (decode(tiny("op"), [inst])[0], decode(tiny("op"), [inst], samples=4)[0]):
        ev = opsrl.evaluate(inst, sol)
        assert ev.feasible and ev.objective > 0


def test_mixed_sizes_keep_their_order() -> None:
    insts = [opsrl.generate("tsp", n, seed=n) for n in (8, 10, 8, 9)]
    sols = decode(tiny("tsp"), insts, batch=2)
    assert [len(s) for s in sols] == [8, 10, 8, 9]
    assert_feasible(insts, sols)


def test_a_passed_deadline_falls_back_to_greedy() -> None:
    insts = instances("cvrp", count=2)
    found = decode_details(tiny("cvrp"), insts, beam=4, deadline=time.perf_counter() - 1.0)
    assert found.timed_out and found.solutions == found.greedy
    assert_feasible(insts, found.solutions)


@pytest.fixture
def cvrp_checkpoint(tmp_path):
    policy = tiny("cvrp")
    return save_checkpoint(tmp_path / "bq_cvrp.safetensors", policy.state_dict(),
                           {"problem": "cvrp", "architecture": policy.config.to_dict()})


def test_bq_solver_in_process(cvrp_checkpoint) -> None:
    inst = instances("cvrp", count=1)[0]
    result = opsrl.solve(inst, "bq", time_limit=30, isolate=False,
                         params={"checkpoint": str(cvrp_checkpoint), "beam": "3", "device": "cpu"})
    assert result.status is Status.FEASIBLE and result.feasible, result.message
    assert result.device == "cpu" and result.stats["mode"] == "beam 3"
    with pytest.raises(UsageError, match="choose one"):
        opsrl.solve(inst, "bq", isolate=False, params={"checkpoint": str(cvrp_checkpoint), "beam": 2, "samples": 2})
    with pytest.raises(UsageError, match="unknown precision 'fp8'"):
        opsrl.solve(inst, "bq", isolate=False, params={"checkpoint": str(cvrp_checkpoint), "precision": "fp8"})
    fp32 = opsrl.solve(inst, "bq", isolate=False, params={"checkpoint": str(cvrp_checkpoint), "precision": "fp32"})
    assert fp32.feasible and fp32.stats["precision"] == "fp32"


def test_bq_solver_in_a_worker_process(cvrp_checkpoint) -> None:
    inst = instances("cvrp", count=1)[0]
    result = opsrl.solve(inst, "bq", time_limit=60, params={"checkpoint": str(cvrp_checkpoint)})
    assert result.status is Status.FEASIBLE and result.feasible, result.message
    assert math.isfinite(result.objective) and result.stats["mode"] == "greedy"


def test_bq_ls_polishes_the_greedy_start(cvrp_checkpoint) -> None:
    inst = instances("cvrp", count=1)[0]
    params = {"checkpoint": str(cvrp_checkpoint), "device": "cpu"}
    greedy = opsrl.solve(inst, "bq", time_limit=30, isolate=False, params=params)
    polished = opsrl.solve(inst, "bq+ls", time_limit=2, isolate=False, params=params)
    assert polished.feasible and polished.status is Status.FEASIBLE
    assert polished.objective <= greedy.objective + 1e-9
    assert polished.stats["ls_initial_objective"] == pytest.approx(greedy.objective)
