"""The BQ policy and its sub-problems: output shapes, padding, permutation equivariance, the action masks,
checkpoint loading, and that the classical path never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import opsrl
from opsrl.core.errors import OpsrlError

torch = pytest.importorskip("torch")

from tests.routing.neural_helpers import one_thread, tiny  # noqa: E402,F401

from opsrl.core.checkpoint import save_checkpoint  # noqa: E402
from opsrl.routing.bq import SPECS, SubProblem, static_from_instances, step  # noqa: E402
from opsrl.routing.instances import CVRPInstance, KPInstance, OPInstance  # noqa: E402
from opsrl.routing.policy import DIM_IN, BQPolicy, PolicyConfig, load_policy  # noqa: E402


@pytest.mark.parametrize("problem", ["tsp", "cvrp", "op", "kp"])
def test_output_shape_and_padding(problem: str) -> None:
    policy = tiny(problem)
    x = torch.rand(3, 7, DIM_IN[problem])
    logits = policy(x)
    assert logits.shape == (3, 7, 2 if problem == "cvrp" else 1)
    padded = torch.cat([x, torch.rand(3, 2, DIM_IN[problem])], dim=1)
    pad = torch.zeros(3, 9, dtype=torch.bool)
    pad[:, 7:] = True
    # padding tokens change nothing for the real ones (the destination is the last real token)
    assert torch.allclose(policy(padded, pad)[:, :7], logits, atol=1e-5)


def test_rezero_starts_as_identity_and_interior_tokens_are_equivariant() -> None:
    policy = BQPolicy(PolicyConfig(problem="tsp", layers=2, width=32, heads=4, ff=64)).eval()
    assert all(layer.alpha.item() == 0.0 for layer in policy.layers)
    x = torch.rand(1, 6, 2)
    with torch.no_grad():
        direct = policy.head(policy.embed(x) + torch.stack([policy.origin, *[torch.zeros(32)] * 4, policy.destination]))
    assert torch.allclose(policy(x), direct, atol=1e-6)
    policy = tiny("tsp")
    perm = torch.tensor([0, 3, 1, 4, 2, 5])  # origin and destination stay, the middle is shuffled
    assert torch.allclose(policy(x[:, perm]), policy(x)[:, perm], atol=1e-5)


def test_paper_preset_has_about_3_million_parameters() -> None:
    n = BQPolicy(PolicyConfig.preset("tsp", "paper")).num_parameters()
    assert 3.0e6 < n < 3.3e6


def _sub(nodes: list[list[int]], remaining: list[float], at_start: bool = False) -> SubProblem:
    return SubProblem(torch.tensor(nodes), torch.tensor(remaining, dtype=torch.float64),
                      torch.full((len(nodes),), at_start))


def test_cvrp_mask_and_step() -> None:
    inst = CVRPInstance(coords=np.random.default_rng(0).random((5, 2)), demands=[0, 4, 6, 10, 2], capacity=10)
    static = static_from_instances("cvrp", [inst])
    spec = SPECS["cvrp"]
    start = spec.initial(static)
    mask = spec.mask(static, start)[0]
    assert start.nodes.tolist() == [[0, 1, 2, 3, 4, 0]]
    assert not mask[:, 0].any() and mask[1:5, 1].all()  # at the depot only via-depot is offered
    assert not mask[0].any() and not mask[-1].any()
    sub = _sub([[1, 2, 3, 4, 0]], [0.6])  # at customer 1 with 6 of 10 left
    mask = spec.mask(static, sub)[0]
    assert mask[:, 0].tolist() == [False, True, False, True, False]  # demand 10 > 6: direct masked
    assert mask[:, 1].tolist() == [False, True, True, True, False]  # via the depot: always
    new, visited, ends = step(spec, static, sub, torch.tensor([2]), torch.tensor([1]), torch.tensor([True]))
    assert new.nodes.tolist() == [[3, 2, 4, 0]] and visited.tolist() == [3] and not ends.any()
    assert float(new.remaining) == pytest.approx(0.0)  # reloaded to 10, then served 10


def test_tsp_and_kp_masks() -> None:
    tsp = opsrl.generate("tsp", 5, seed=0)
    static = static_from_instances("tsp", [tsp])
    mask = SPECS["tsp"].mask(static, SPECS["tsp"].initial(static))[0, :, 0]
    assert mask.tolist() == [False, True, True, True, True, False]
    kp = KPInstance(values=[5, 4, 3], weights=[10, 6, 2], capacity=7)
    static = static_from_instances("kp", [kp])
    spec = SPECS["kp"]
    sub = spec.initial(static)
    assert spec.mask(static, sub)[0, :, 0].tolist() == [False, True, True]
    sub, visited, _ = step(spec, static, sub, torch.tensor([1]), torch.tensor([0]), torch.tensor([True]))
    assert sub.nodes.tolist() == [[0, 2]] and visited.tolist() == [1]
    assert not spec.mask(static, sub).any()  # 1 unit left: nothing fits, the row is finished


def test_op_mask_keeps_the_way_back() -> None:
    coords = [[0, 0], [1, 0], [0, 2], [3, 0]]
    inst = OPInstance(coords=coords, prizes=[0, 1, 1, 1], max_length=4.5)
    static = static_from_instances("op", [inst])  # scaled by 3: budget 1.5
    spec = SPECS["op"]
    mask = spec.mask(static, spec.initial(static))[0, :, 0]
    # node 1: 1 + 1 <= 4.5; node 2: 2 + 2 <= 4.5; node 3: 3 + 3 > 4.5; no end while a node fits
    assert mask.tolist() == [False, True, True, False, False]
    sub, _, ends = step(spec, static, spec.initial(static), torch.tensor([2]), torch.tensor([0]), torch.tensor([True]))
    assert ends.tolist() == [False]  # at node 2 with 2.5 left: node 1 needs sqrt(5) + 1, node 3 sqrt(13) + 3
    assert spec.mask(static, sub)[0, :, 0].tolist() == [False, False, False, True]  # only the end is left
    sub, _, ends = step(spec, static, sub, torch.tensor([3]), torch.tensor([0]), torch.tensor([True]))
    assert ends.tolist() == [True]


def test_missing_checkpoint_is_a_one_line_error(tmp_path, monkeypatch) -> None:
    with pytest.raises(OpsrlError, match=r"nope\.safetensors.*opsrl train --problem cvrp") as exc:
        load_policy("cvrp", tmp_path / "nope.safetensors")
    assert "\n" not in str(exc.value)
    monkeypatch.setattr("opsrl.routing.policy.shipped_checkpoint", lambda problem: tmp_path / f"bq_{problem}.safetensors")
    with pytest.raises(OpsrlError, match="no shipped bq checkpoint for op") as exc:
        load_policy("op")
    assert "\n" not in str(exc.value)


def test_checkpoint_round_trip(tmp_path) -> None:
    policy = tiny("cvrp")
    path = save_checkpoint(tmp_path / "p.safetensors", policy.state_dict(),
                           {"problem": "cvrp", "architecture": policy.config.to_dict()})
    loaded = opsrl.load_policy("cvrp", path)
    x = torch.rand(2, 6, 4)
    assert torch.equal(loaded(x), policy(x))
    with pytest.raises(OpsrlError, match="a checkpoint for 'cvrp', not tsp"):
        load_policy("tsp", path)


def test_sidecar_decoding_knn_is_the_default_and_an_explicit_knn_overrides_it(tmp_path) -> None:
    from opsrl.routing.decode import decode

    policy = tiny("tsp")
    meta = {"problem": "tsp", "architecture": policy.config.to_dict()}
    path = save_checkpoint(tmp_path / "k.safetensors", policy.state_dict(), {**meta, "decoding": {"knn": 3}})
    loaded = load_policy("tsp", path)
    assert loaded.knn == 3 and load_policy("tsp", save_checkpoint(tmp_path / "plain", policy.state_dict(), meta)).knn == 0
    insts = opsrl.generate("tsp", 12, seed=4, count=6)
    assert decode(loaded, insts) == decode(loaded, insts, knn=3) == decode(policy, insts, knn=3)
    assert decode(loaded, insts, knn=0) == decode(policy, insts)
    assert decode(loaded, insts) != decode(policy, insts)  # the view of 3 nearest changes some tours
    result = opsrl.solve(insts[0], solver="bq", params={"checkpoint": str(path)})
    assert result.feasible and result.stats["knn"] == 3
    for bad in ({"knn": -1}, {"knn": "five"}, ["knn"]):
        path = save_checkpoint(tmp_path / "bad.safetensors", policy.state_dict(), {**meta, "decoding": bad})
        with pytest.raises(OpsrlError, match=r"bad\.safetensors: sidecar's decoding.knn must be a whole number") as exc:
            load_policy("tsp", path)
        assert "\n" not in str(exc.value)


def test_classical_path_does_not_import_torch() -> None:
    code = ("import sys, opsrl, opsrl.routing; names = opsrl.list_solvers('cvrp'); "
            "assert 'bq' in names, names; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _shipped_greedy(problem: str, size: int, count: int, reference) -> list[float]:
    """Greedy-decode the shipped ``problem`` policy on seeded instances, check feasibility, and return each
    solution's objective divided by ``reference(instance)``. Every routing problem ships a policy, so a
    missing one fails here (load_policy names it)."""
    from opsrl.routing.decode import decode

    policy = opsrl.load_policy(problem)
    assert policy.config.problem == problem
    insts = opsrl.generate(problem, size, seed=777, count=count)
    ratios = []
    for inst, sol in zip(insts, decode(policy, insts)):
        ev = opsrl.evaluate(inst, sol)
        assert ev.feasible, ev.violations
        ratios.append(ev.objective / reference(inst))
    return ratios


def _solved(solver: str, time_limit: float):
    return lambda inst: opsrl.solve(inst, solver, time_limit=time_limit, isolate=False).objective


def _nearest_neighbour_length(inst) -> float:
    import numpy as np

    xy = np.asarray(inst.coords, float)
    left, tour = set(range(1, len(xy))), [0]
    while left:
        nxt = min(left, key=lambda j: float(np.hypot(*(xy[j] - xy[tour[-1]]))))
        tour.append(nxt)
        left.remove(nxt)
    return sum(float(np.hypot(*(xy[a] - xy[b]))) for a, b in zip(tour, tour[1:] + tour[:1]))


def test_shipped_kp_policy_is_near_optimal_on_its_training_size() -> None:
    gaps = [100 * (1 - r) for r in _shipped_greedy("kp", 100, 8, _solved("ortools", 5))]
    assert 0 <= sum(gaps) / len(gaps) < 1.0  # measured 0.18 % on 1,000 test instances


def test_shipped_tsp_policy_decodes_tours_better_than_nearest_neighbour() -> None:
    ratios = _shipped_greedy("tsp", 50, 6, _nearest_neighbour_length)
    assert sum(ratios) / len(ratios) < 0.92  # greedy: 5.3 % above LKH on TSP50, nearest neighbour about 25 %


def test_shipped_op_policy_decodes_feasible_tours() -> None:
    ratios = _shipped_greedy("op", 50, 6, _solved("pyvrp", 0.5))
    assert 0.6 < sum(ratios) / len(ratios) <= 1.05  # greedy: 26 % below PyVRP's prize on 100 test instances


def test_shipped_cvrp_policy_is_the_default_and_decodes_feasible_routes() -> None:
    from opsrl.api import default_solver

    gaps = [100 * (r - 1) for r in _shipped_greedy("cvrp", 50, 6, _solved("pyvrp", 0.5))]
    assert default_solver("cvrp") == "bq+ls"
    assert 0 < sum(gaps) / len(gaps) < 35.0  # greedy alone: measured 20.9 % to HGS on 100 test instances
