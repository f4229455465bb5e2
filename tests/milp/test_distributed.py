"""Data-parallel branching imitation: two gloo processes compute the single-process gradient and validation
figures of each global batch of samples, ``opsrl train --nproc 2`` trains like one process, and its
checkpoints load anywhere (no ``module.``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.milp.test_train import toy_samples  # noqa: E402,F401

from opsrl.core import distributed  # noqa: E402
from opsrl.core.checkpoint import load_checkpoint  # noqa: E402


def one_step(data: str, out_file: str = "") -> dict:
    """A tiny GCNN's training passes over the toy samples (SGD at lr 0, so the weights stay put) and a validation pass.

    ``whole``: one global batch of all the training samples; ``tail``: batches of n - 1 samples, so the
    last global batch has one sample and the second process's share is empty. Run in each process of a
    group (``distributed.launch``) or alone; rank 0 saves its answer to ``out_file``.
    """
    from opsrl.milp.policy import GCNN
    from opsrl.milp.train import SampleDataset, fit_prenorm, run_gcnn_epoch, shard_batches

    ctx = distributed.context("cpu")
    train_set, val_set = SampleDataset([Path(data) / "train"]), SampleDataset([Path(data) / "val"])
    torch.manual_seed(0)
    model = GCNN(8)
    fit_prenorm(model, train_set)
    ddp = distributed.wrap(model, ctx)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    order, n = torch.arange(len(train_set)).flip(0), len(train_set)
    answer = {}
    for name, batch in (("whole", n), ("tail", n - 1)):
        metrics = run_gcnn_epoch(ddp, shard_batches(train_set, order, batch, ctx), "cpu", opt, ctx)
        answer[name] = (metrics, {k: p.grad.clone() for k, p in model.named_parameters()})
    answer["val"] = run_gcnn_epoch(model, shard_batches(val_set, torch.arange(len(val_set)), 1, ctx, fill=False),
                                   "cpu", ctx=ctx)
    if ctx.is_main and out_file:
        torch.save(answer, out_file)
    return answer


def _train_cli(data: str, out: Path, *extra: str) -> tuple[int, str]:
    """``opsrl train -p milp`` of one GCNN epoch and a short hybrid stage (here alone, or as one rank of a group)."""
    from opsrl.cli.app import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(["train", "-p", "milp", "--data", data, "--policy", "hybrid", "--epochs", "1", "--batch", "64",
                  "--lr", "1e-3", "--set", "emb=8", "--set", "hybrid_epochs=2", "--device", "cpu", "--out", str(out),
                  "--json", *extra])
        except SystemExit as exc:
            return int(exc.code or 0), buf.getvalue()
    return 0, buf.getvalue()


def group_member(data: str, tmp: str) -> None:
    """What each process of the two-process group does: the passes of ``one_step``, then ``opsrl train`` as
    torchrun runs it."""
    rank = int(os.environ["RANK"])
    one_step(data, str(Path(tmp) / "steps.pt"))
    code, out = _train_cli(data, Path(tmp) / "two.safetensors", "--nproc", "2")  # under torchrun: runs here
    (Path(tmp) / f"cli{rank}.txt").write_text(f"{code}\n{out}")


def test_two_gloo_processes_train_like_one(toy_samples, tmp_path) -> None:
    from opsrl.milp.collect import sample_dir
    from opsrl.milp.policy import load_policy

    data = str(sample_dir("sc-toy", "train").parent)
    assert toy_samples[0]["samples"] >= 4  # so that batches of n - 1 leave a last batch of one sample
    distributed.launch(group_member, 2, data=data, tmp=str(tmp_path))

    one = one_step(data)
    two = torch.load(tmp_path / "steps.pt", weights_only=True)
    for name in ("whole", "tail"):
        (m1, g1), (m2, g2) = one[name], two[name]
        assert m2 == pytest.approx(m1, rel=1e-5)
        assert set(g2) == set(g1) and sum(float(g.abs().sum()) for g in g1.values()) > 0
        for key, g in g1.items():  # DDP's averaged gradient is the single-process gradient of the global batch
            torch.testing.assert_close(g2[key], g, rtol=1e-5, atol=1e-7, msg=f"{name} {key}")
    assert two["val"] == pytest.approx(one["val"], rel=1e-5)

    code, out1 = _train_cli(data, tmp_path / "one.safetensors")
    assert code == 0, out1
    code2, out2 = (tmp_path / "cli0.txt").read_text().split("\n", 1)
    assert code2 == "0" and (tmp_path / "cli1.txt").read_text() == "0\n"  # rank 1 prints nothing
    m1, m2 = json.loads(out1), json.loads(out2)
    assert (m1["processes"], m2["processes"]) == (1, 2) and m1["gcnn_epochs"] == m2["gcnn_epochs"] == 1
    assert m2["gcnn_val"] == pytest.approx(m1["gcnn_val"], rel=1e-5)
    for path in ("two.safetensors", "two_gcnn.safetensors"):
        state, meta = load_checkpoint(tmp_path / path)
        assert not any(k.startswith("module.") for k in state) and meta["recipe"]["processes"] == 2
        assert "--nproc 2" in meta["recipe"]["command"]
    state, _ = load_checkpoint(tmp_path / "two_gcnn.safetensors")
    first, _ = load_checkpoint(tmp_path / "one_gcnn.safetensors")
    for name in first:  # one Adam step (lr 1e-3) from the same start: the global batch holds every sample
        torch.testing.assert_close(state[name], first[name], rtol=0, atol=2e-3, msg=name)
    policy = load_policy(tmp_path / "two.safetensors")
    assert policy.kind == "hybrid" and policy.gnn.emb == 8
