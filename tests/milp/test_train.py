"""Sample collection and imitation training, end to end at toy scale."""

from __future__ import annotations

import json

import pytest

from opsrl.core.train_options import TrainOptions
from opsrl.milp.distributions import Distribution


@pytest.fixture(scope="module")
def toy_samples(tmp_path_factory):
    """A toy set cover distribution with a few strong-branching samples collected (resumably)."""
    from opsrl.milp import distributions
    from opsrl.milp.collect import collect

    dist = Distribution("sc-toy", "setcover", {"nrows": 200, "ncols": 200}, split_sizes={"train": 2, "val": 1, "test": 1})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSRL_MILP_DATA", str(tmp_path_factory.mktemp("milp")))
        mp.setitem(distributions.resolve.__globals__, "catalogue", lambda: {"sc-toy": dist})
        first = collect("sc-toy", 4, jobs=1, query_prob=1.0, per_episode=3)
        again = collect("sc-toy", 4, jobs=1, query_prob=1.0, per_episode=3)
        collect("sc-toy", 1, split="val", jobs=1, query_prob=1.0, per_episode=2)
        yield first, again


def test_collect_is_resumable(toy_samples):
    first, again = toy_samples
    assert first["samples"] >= 4
    assert again["episodes_run"] == 0 and again["samples"] == first["samples"]


def test_samples_hold_the_strong_branching_choice(toy_samples):
    """Every sample's target is the candidate with the best finite strong-branching score."""
    import numpy as np

    from opsrl.milp.collect import sample_dir

    files = sorted(p for p in sample_dir("sc-toy", "train").glob("*.npz") if not p.stem.endswith("_root"))
    assert files
    for path in files:
        with np.load(path) as z:
            scores, target = z["scores"], int(z["target"])
        assert np.isfinite(scores[target]) and scores[target] == scores[np.isfinite(scores)].max()


def test_strong_branching_limit_follows_scip_fullstrong():
    """The per-child LP iteration limit is SCIP's full-strong default: 2 x mean node LP iterations in [10, 500]."""
    from types import SimpleNamespace

    from opsrl.milp.collect import strong_branching_itlim

    def fake(lps, iters, nodes):
        return SimpleNamespace(getNLPs=lambda: lps, getNNodeLPIterations=lambda: iters,
                               getNLPIterations=lambda: iters, getNNodes=lambda: nodes)

    assert strong_branching_itlim(fake(10, 1000, 1000)) == int(2 * 100 * 1.02)
    assert strong_branching_itlim(fake(100, 5, 1000)) == 10
    assert strong_branching_itlim(fake(1, 10, 1)) == 2 * 10 * 21  # early in the tree: (1 + 20 / nodes)
    assert strong_branching_itlim(fake(1, 10_000, 1)) == 500


def test_samples_read_as_graphs(toy_samples):
    from opsrl.milp.collect import sample_dir
    from opsrl.milp.train import SampleDataset

    ds = SampleDataset([sample_dir("sc-toy", "train")])
    assert len(ds) == toy_samples[0]["samples"]
    s = ds[0]
    assert 0 <= s.target.item() < len(s.cand_pos)
    assert int(s.edge_index[0].max()) < s.cons.size(0) and int(s.edge_index[1].max()) < s.var.size(0)


def test_candidate_logits_equal_the_full_forward_pass(toy_samples):
    """Branching computes only the candidates' logits; they must be the full pass's, on real node states."""
    import torch

    from opsrl.milp.collect import sample_dir
    from opsrl.milp.policy import GCNN
    from opsrl.milp.train import SampleDataset, fit_prenorm

    ds = SampleDataset([sample_dir("sc-toy", "train")])
    torch.manual_seed(0)
    model = GCNN(16)
    fit_prenorm(model, ds)
    with torch.inference_mode():
        for s in [ds[i] for i in range(min(5, len(ds)))]:
            args = (s.cons, s.edge_index, s.edge_attr, s.var)
            full = model(*args)[s.cand_pos]
            assert torch.allclose(model.candidate_logits(*args, s.cand_pos), full, atol=1e-5)


def test_gcnn_loss_goes_down_on_its_samples(toy_samples):
    import torch
    from torch_geometric.loader import DataLoader

    from opsrl.milp.collect import sample_dir
    from opsrl.milp.policy import GCNN
    from opsrl.milp.train import SampleDataset, fit_prenorm, run_gcnn_epoch

    ds = SampleDataset([sample_dir("sc-toy", "train")])
    torch.manual_seed(0)
    model = GCNN(16)
    fit_prenorm(model, ds)
    loader = DataLoader(ds, batch_size=len(ds), follow_batch=["cand_pos"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = run_gcnn_epoch(model, loader, "cpu")["loss"]
    for _ in range(15):
        run_gcnn_epoch(model, loader, "cpu", opt)
    assert run_gcnn_epoch(model, loader, "cpu")["loss"] < 0.5 * before


def test_train_from_options_writes_a_loadable_policy(toy_samples, tmp_path):
    from opsrl.milp.policy import load_policy
    from opsrl.milp.train import train_from_options

    options = TrainOptions(problem="milp", out=tmp_path / "toy.safetensors", device="cpu", progress=False,
                           distribution="sc-toy", epochs=2, batch=4, sets={"emb": "8", "hybrid_epochs": "3"})
    metrics = train_from_options(options)
    assert 0.0 <= metrics["val_acc1"] <= metrics["val_acc5"] <= metrics["val_acc10"] <= 1.0
    meta = json.loads((tmp_path / "toy.json").read_text())
    assert meta["kind"] == "hybrid" and "opsrl train --problem milp" in meta["recipe"]["command"]
    policy = load_policy(tmp_path / "toy.safetensors")
    assert policy.kind == "hybrid" and policy.gnn.emb == 8


def test_topk_accuracy_counts_ties_with_the_best_score():
    """Accuracy counts a top k holding any candidate tied with the best score; equal logits rank in order."""
    import numpy as np
    import torch

    from opsrl.milp.policy import cross_entropy_topk, tied_best

    logits = torch.tensor([1.0, 3.0, 2.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0])
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    target = torch.tensor([2, 1, 2])
    _, only_choice = cross_entropy_topk(logits, batch, target, ks=(1, 2, 3))
    assert only_choice == pytest.approx({1: 0.0, 2: 2 / 3, 3: 1.0})  # choices ranked 1, 1 (tie, later), 2
    best = torch.from_numpy(np.concatenate([tied_best(np.array(s)) for s in
                                            ([1.0, 7.0, 7.0], [0.0, 4.0, 1.0], [-np.inf, 2.0, 3.0])]))
    _, with_ties = cross_entropy_topk(logits, batch, target, best, ks=(1, 2, 3))
    assert with_ties[1] == pytest.approx(1 / 3) and with_ties[2] == pytest.approx(2 / 3)


def test_accuracy_command_scores_the_policy_and_the_rules(toy_samples, tmp_path, cli):
    from opsrl.milp.train import train_from_options

    ckpt = tmp_path / "toy.safetensors"
    train_from_options(TrainOptions(problem="milp", out=ckpt, device="cpu", progress=False, distribution="sc-toy",
                                    epochs=1, batch=4, sets={"emb": "8", "hybrid_epochs": "2"}))
    code, stdout, _ = cli("milp", "accuracy", "-c", ckpt, "-d", "sc-toy", "--split", "train")
    assert code == 0
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["samples"] == toy_samples[0]["samples"]
    for rule in ("policy", "pscost", "mostinf"):
        assert 0.0 <= out[rule]["acc1"] <= out[rule]["acc5"] <= out[rule]["acc10"] <= 1.0
    assert 0.0 < out["random_acc1"] <= 1.0
    code, _, err = cli("milp", "accuracy", "-c", ckpt, "-d", "sc-toy", "--split", "test")
    assert code == 1 and "no test samples" in err
    code, _, err = cli("milp", "accuracy", "-c", ckpt)
    assert code == 2 and "--distribution" in err
    from opsrl.milp.collect import sample_dir

    code, stdout, _ = cli("milp", "accuracy", "-c", ckpt, "--data", sample_dir("sc-toy", "train").parent, "--split", "val")
    assert code == 0 and json.loads(stdout.strip().splitlines()[-1])["samples"] >= 1
