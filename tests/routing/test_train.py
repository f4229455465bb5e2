"""Imitation training: tail-sampled sub-problems are cut from the expert solution correctly (and its suffix
is optimal for them), the loss goes down, and training writes, reloads and resumes checkpoints."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math

import numpy as np
import pytest

import opsrl

torch = pytest.importorskip("torch")

from tests.routing.neural_helpers import one_thread  # noqa: E402,F401

from opsrl.routing.bq import SPECS, static_from_instances  # noqa: E402
from opsrl.routing.decode import decode  # noqa: E402
from opsrl.routing.labels import save_labels  # noqa: E402
from opsrl.routing.policy import BQPolicy, PolicyConfig, load_policy  # noqa: E402
from opsrl.routing.train import (  # noqa: E402
    dihedral, imitation_loss, prepare_labels, reorder_routes, rotate_tours, tail_subproblems, train)


def _length(d: np.ndarray, path: list[int]) -> float:
    return float(sum(d[a, b] for a, b in zip(path, path[1:])))


def optimal_tours(insts: list) -> list[list[int]]:
    """Brute-force TSP optima (tours from node 0), vectorised over the permutations."""
    n = insts[0].num_nodes
    perms = np.array(list(itertools.permutations(range(1, n))))
    paths = np.concatenate([np.zeros((len(perms), 1), int), perms, np.zeros((len(perms), 1), int)], 1)
    tours = []
    for inst in insts:
        lengths = inst.distances[paths[:, :-1], paths[:, 1:]].sum(1)
        tours.append([0, *map(int, perms[int(np.argmin(lengths))])])
    return tours


def optimal_cvrp(inst) -> list[list[int]]:
    """Brute-force CVRP optimum: every customer order, split optimally into routes (dynamic programme)."""
    d, q, cap, n = inst.distances, inst.demands, inst.capacity, inst.size
    best, best_routes = math.inf, None
    for perm in itertools.permutations(range(1, n + 1)):
        cost, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
        for j in range(1, n + 1):
            load, inner = 0.0, 0.0
            for i in range(j, 0, -1):  # route perm[i-1 .. j-1]
                load += q[perm[i - 1]]
                if load > cap:
                    break
                if i < j:
                    inner += d[perm[i - 1], perm[i]]
                c = cost[i - 1] + d[0, perm[i - 1]] + inner + d[perm[j - 1], 0]
                if c < cost[j]:
                    cost[j], cut[j] = c, i - 1
        if cost[n] < best:
            best, routes, j = cost[n], [], n
            while j > 0:
                routes.insert(0, list(perm[cut[j]:j]))
                j = cut[j]
            best_routes = routes
    return best_routes


def optimal_kp(inst) -> list[int]:
    n = inst.size
    subsets = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    value = np.where(subsets @ inst.weights <= inst.capacity, subsets @ inst.values, -1)
    return [int(i) for i in np.flatnonzero(subsets[int(np.argmax(value))])]


def label_file(tmp_path, problem: str, size: int, count: int, seed: int = 0):
    """A label file of ``count`` instances: optimal for tsp, cvrp and kp; a random policy's tours for op."""
    insts = opsrl.generate(problem, size, seed=seed, count=count)
    if problem == "kp":
        insts = [dataclasses.replace(i, capacity=2500.0) for i in insts]
    if problem == "tsp":
        sols = optimal_tours(insts)
    elif problem == "cvrp":
        sols = [optimal_cvrp(i) for i in insts]
    elif problem == "kp":
        sols = [optimal_kp(i) for i in insts]
    else:
        torch.manual_seed(0)
        sols = decode(BQPolicy(PolicyConfig.preset("op", "tiny")), insts)
    path = tmp_path / f"{problem}{size}.npz"
    save_labels(problem, insts, sols, path, "brute force", 0.0)
    return path, insts, sols


def _labels(problem: str, path):
    from opsrl.routing.labels import load_labels

    _, insts, arrays = load_labels(path)
    static = static_from_instances(problem, insts)
    return insts, arrays, static, prepare_labels(problem, static, arrays, np.random.default_rng(0))


def test_reorder_routes_puts_the_fullest_first() -> None:
    demand = np.array([[0, 0.5, 0.2, 0.3, 0.4, 0.1]])  # scaled by the capacity
    order = np.array([[2, 5, 1, 3, 4]])  # routes [2, 5] (0.3), [1, 3] (0.8), [4] (0.4)
    via = np.array([[True, False, True, False, True]])
    new_order, new_via = reorder_routes(order, via, demand)
    assert new_order.tolist() == [[1, 3, 4, 2, 5]]
    assert new_via.tolist() == [[True, False, True, True, False]]


def test_rotate_tours_keeps_each_cycle_and_varies_its_start_and_direction() -> None:
    seq = torch.tensor([[0, 3, 1, 4, 2, 0]] * 200)
    rotated = rotate_tours(seq, np.random.default_rng(0))
    cycle = [0, 3, 1, 4, 2]
    variants = {tuple(c[i:] + c[:i]) for c in (cycle, cycle[::-1]) for i in range(5)}
    assert all(tuple(row[:5]) in variants and row[5] == row[0] for row in rotated.tolist())
    assert len({tuple(row) for row in rotated.tolist()}) == 10  # every start, both directions


def test_tsp_tail_is_a_path_of_the_optimal_tour_and_optimal_for_its_sub_problem(tmp_path) -> None:
    path, insts, tours = label_file(tmp_path, "tsp", 7, 6)
    _, _, static, labels = _labels("tsp", path)
    spec, rng, sizes, ends = SPECS["tsp"], np.random.default_rng(1), set(), set()
    for _ in range(12):
        tail = tail_subproblems("tsp", static, labels, rng)
        sub, targets = tail.sub, tail.targets
        t = sub.nodes.shape[1]
        sizes.add(t)
        assert targets.sum().item() == len(insts) and targets[:, 1, 0].all()
        assert spec.mask(static, sub)[targets].all()
        for row, (inst, tour) in enumerate(zip(insts, tours)):
            path_ = sub.nodes[row].tolist()
            ends.add(path_[-1])
            walks = [[tour[(tour.index(path_[0]) + d * i) % 7] for i in range(t)] for d in (1, -1)]
            assert path_ in walks  # consecutive cities of the tour, one way or the other
            origin, rest, end = path_[0], path_[1:-1], path_[-1]
            best = min(_length(inst.distances, [origin, *p, end]) for p in itertools.permutations(rest))
            assert _length(inst.distances, path_) == pytest.approx(best)
    assert min(sizes) >= 4 and max(sizes) <= 8 and len(sizes) > 2
    assert len(ends) > 3  # the paths end anywhere, not only at the label's first city


def test_cvrp_tail_has_the_remaining_capacity_and_next_customer(tmp_path) -> None:
    path, insts, _ = label_file(tmp_path, "cvrp", 6, 4)
    _, _, static, labels = _labels("cvrp", path)
    seq, via = labels["seq"].numpy(), labels["via"].numpy()
    spec, rng, starts = SPECS["cvrp"], np.random.default_rng(2), set()
    for _ in range(15):
        tail = tail_subproblems("cvrp", static, labels, rng)
        sub, targets = tail.sub, tail.targets
        k = 6 - (sub.nodes.shape[1] - 2)
        starts.add(k)
        assert spec.mask(static, sub)[targets].all()
        for row, inst in enumerate(insts):
            served = seq[row, :k].tolist()
            route_start = max([j for j in range(k) if via[row, j]], default=0)
            load = sum(inst.demands[v] for v in served[route_start:])
            assert sub.nodes[row].tolist() == [served[-1] if k else 0, *seq[row, k:].tolist(), 0]
            assert float(sub.remaining[row]) == pytest.approx(1.0 - load / inst.capacity)
            assert bool(sub.at_start[row]) == (k == 0)
            assert targets[row].nonzero().tolist() == [[1, int(via[row, k])]]
    assert 0 in starts and len(starts) > 3


def test_op_tail_takes_the_prefix_off_the_budget(tmp_path) -> None:
    path, insts, tours = label_file(tmp_path, "op", 8, 6)
    _, _, static, labels = _labels("op", path)
    spec, rng = SPECS["op"], np.random.default_rng(3)
    for _ in range(10):
        tail = tail_subproblems("op", static, labels, rng)
        sub, targets = tail.sub, tail.targets
        k = 8 - (sub.nodes.shape[1] - 2)
        assert spec.mask(static, sub)[targets].all()
        for row, (inst, tour) in enumerate(zip(insts, tours)):
            cut = min(k, len(tour))
            scale = float(np.ptp(inst.coords, axis=0).max())
            used = _length(inst.distances, [0, *tour[:cut]]) / scale
            assert float(sub.remaining[row]) == pytest.approx(inst.max_length / scale - used)
            assert set(tour[cut:]) <= set(sub.nodes[row, 1:-1].tolist())
            assert not set(tour[:cut]) & set(sub.nodes[row, 1:-1].tolist())
            token = int(targets[row, :, 0].nonzero()[0, 0])
            if cut < len(tour):
                assert sub.nodes[row, token] == tour[cut]
            else:
                assert token == sub.nodes.shape[1] - 1  # the expert ends its tour here


def test_kp_tail_removes_packed_items_and_targets_the_rest(tmp_path) -> None:
    path, insts, packs = label_file(tmp_path, "kp", 10, 6)
    _, _, static, labels = _labels("kp", path)
    spec, rng, left_counts = SPECS["kp"], np.random.default_rng(4), set()
    for _ in range(10):
        tail = tail_subproblems("kp", static, labels, rng)
        sub, targets, pad = tail.sub, tail.targets, tail.pad
        assert spec.mask(static, sub)[targets].all() and not targets[pad].any()
        for row, (inst, packed) in enumerate(zip(insts, packs)):
            left = sub.nodes[row][~pad[row]].tolist()
            removed = sorted(set(range(10)) - set(left))
            assert len(left) + len(removed) == 10 and set(removed) <= set(packed) and len(removed) < len(packed)
            left_counts.add(len(packed) - len(removed))
            wmax = inst.weights.max()
            assert float(sub.remaining[row]) * wmax == pytest.approx(inst.capacity - inst.weights[removed].sum())
            targeted = [int(sub.nodes[row, j]) for j in targets[row, :, 0].nonzero()[:, 0]]
            assert sorted(targeted) == sorted(set(packed) - set(removed))
    assert 1 in left_counts  # the last packing decision is trained


def test_kp_loss_is_minus_log_of_the_packed_probability(tmp_path) -> None:
    path, _, _ = label_file(tmp_path, "kp", 10, 4)
    _, _, static, labels = _labels("kp", path)
    torch.manual_seed(0)
    policy = BQPolicy(PolicyConfig.preset("kp", "tiny"))
    tail = tail_subproblems("kp", static, labels, np.random.default_rng(5))
    assert tail.pad.any()  # rows of different widths
    with torch.no_grad():
        loss = imitation_loss(policy, SPECS["kp"], static, tail)
        expected = []
        for row in range(4):  # each row alone, without padding
            real = ~tail.pad[row]
            sub = dataclasses.replace(tail.sub, nodes=tail.sub.nodes[row:row + 1, real],
                                      remaining=tail.sub.remaining[row:row + 1], at_start=tail.sub.at_start[row:row + 1])
            one = static.take(torch.tensor([row]))
            logits = policy(SPECS["kp"].features(one, sub))[0, :, 0]
            probs = torch.softmax(logits.masked_fill(~SPECS["kp"].mask(one, sub)[0, :, 0], -math.inf), 0)
            expected.append(-torch.log(probs[tail.targets[row, real, 0]].sum()))
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-5)


def _fixed_loss(policy: BQPolicy, static, labels) -> float:
    rng = np.random.default_rng(123)
    with torch.no_grad():
        tails = [tail_subproblems("tsp", static, labels, rng) for _ in range(20)]
        return float(np.mean([float(imitation_loss(policy, SPECS["tsp"], static, tail)) for tail in tails]))


def test_training_loss_goes_down(tmp_path) -> None:
    path, _, _ = label_file(tmp_path, "tsp", 8, 64)
    _, _, static, labels = _labels("tsp", path)
    metrics = train("tsp", path, out=tmp_path / "tsp.safetensors", preset="tiny", epochs=12, batch=16, lr=1e-2,
                    val_count=8, device="cpu", progress=False)
    assert metrics["steps"] == 48 and metrics["epochs_done"] == 12
    torch.manual_seed(0)
    before = _fixed_loss(BQPolicy(PolicyConfig.preset("tsp", "tiny")), static, labels)
    after = _fixed_loss(load_policy("tsp", tmp_path / "tsp.last.safetensors"), static, labels)
    assert after < 0.8 * before, (before, after)
    with open(tmp_path / "tsp.curve.csv") as f:
        losses = [float(r["train_loss"]) for r in csv.DictReader(f)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


@pytest.mark.parametrize("problem", ["cvrp", "op", "kp"])
def test_training_writes_checkpoints_that_load_and_resume(tmp_path, problem: str) -> None:
    path, _, _ = label_file(tmp_path, problem, 6, 12)
    out = tmp_path / f"bq_{problem}.safetensors"
    first = train(problem, path, out=out, preset="tiny", epochs=1, batch=4, val_count=4, device="cpu", progress=False)
    assert first["epochs_done"] == 1 and first["steps"] == 2 and math.isfinite(first["final_val_gap_pct"])
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["problem"] == problem and meta["architecture"]["width"] == 32 and "opsrl_version" in meta
    assert meta["training"]["label_solver"] == "brute force" and meta["training"]["preset"] == "tiny"
    assert meta["metrics"]["epochs_done"] == 1 and "best_val_gap_pct" in meta["metrics"]
    assert load_policy(problem, out).config == PolicyConfig.preset(problem, "tiny")
    second = train(problem, path, out=out, epochs=2, batch=4, val_count=4, device="cpu", progress=False,
                   resume=tmp_path / f"bq_{problem}.last.safetensors")
    assert second["epochs_done"] == 2 and second["steps"] == 4
    with open(tmp_path / f"bq_{problem}.curve.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]
    assert (tmp_path / f"bq_{problem}.last.pt").is_file()
    recipe = json.loads(out.with_suffix(".json").read_text())["training"]
    assert recipe["epochs"] == 2 and recipe["resumed_from"].endswith(f"bq_{problem}.last.safetensors")
    assert [run["epochs"] for run in recipe["history"]] == [1]  # the run it continued, as it was recorded
    assert "history" not in recipe["history"][0]


def test_weight_average_is_the_mean_of_the_named_epochs_and_survives_resume(tmp_path) -> None:
    """average_from=1: after epoch 1 the mean is epoch 1's weights; a resumed epoch 2 makes it (w1 + w2) / 2."""
    from opsrl.core.checkpoint import load_checkpoint

    path, _, _ = label_file(tmp_path, "tsp", 6, 12)
    out = tmp_path / "bq.safetensors"
    first = train("tsp", path, out=out, preset="tiny", epochs=1, batch=4, val_count=4, device="cpu", progress=False,
                  average_from=1)
    avg = tmp_path / "bq.avg.safetensors"
    assert first["average"]["epochs"] == [1] and first["average_checkpoint"] == str(avg)
    w1, _ = load_checkpoint(tmp_path / "bq.last.safetensors")
    mean1, meta1 = load_checkpoint(avg)
    assert all(torch.equal(mean1[k], w1[k]) for k in w1)
    assert meta1["averaging"]["epochs"] == [1] and math.isfinite(meta1["averaging"]["val_gap_pct"])
    assert meta1["training"]["average_from"] == 1
    second = train("tsp", path, out=out, epochs=2, batch=4, val_count=4, device="cpu", progress=False,
                   resume=tmp_path / "bq.last.safetensors", average_from=1)
    w2, _ = load_checkpoint(tmp_path / "bq.last.safetensors")
    mean2, meta2 = load_checkpoint(avg)
    assert second["average"]["epochs"] == [1, 2] and meta2["averaging"]["epochs"] == [1, 2]
    assert not torch.equal(w1["head.weight"], w2["head.weight"])
    assert all(torch.allclose(mean2[k], (w1[k] + w2[k]) / 2, atol=1e-6) for k in w1)
    assert load_policy("tsp", avg).config == PolicyConfig.preset("tsp", "tiny")  # it loads like any checkpoint
    # a schedule it was not made with starts a new mean: every 2 epochs from 3 holds nothing yet at epoch 2
    third = train("tsp", path, out=out, epochs=3, batch=4, val_count=4, device="cpu", progress=False,
                  resume=tmp_path / "bq.last.safetensors", average_from=3, average_every=2)
    assert third["average"]["epochs"] == [3]


def test_dihedral_augmentation_keeps_distances_and_the_unit_square():
    insts = opsrl.generate("cvrp", 12, seed=3, count=16)
    static = static_from_instances("cvrp", insts, "cpu")
    moved = dihedral(static, np.random.default_rng(0))
    assert not torch.equal(moved.coords, static.coords)
    assert torch.allclose(torch.cdist(moved.coords, moved.coords), torch.cdist(static.coords, static.coords))
    assert moved.coords.min() >= 0 and moved.coords.max() <= 1
    assert torch.equal(moved.demand, static.demand)
