"""Data-parallel imitation training: two gloo processes compute the single-process gradient of each global
batch, ``opsrl train --nproc 2`` trains like one process, and its checkpoints load anywhere (no ``module.``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.routing.neural_helpers import one_thread, tiny  # noqa: E402,F401
from tests.routing.test_train import label_file  # noqa: E402

from opsrl.core import distributed  # noqa: E402
from opsrl.core.checkpoint import load_checkpoint  # noqa: E402
from opsrl.core.errors import UsageError  # noqa: E402
from opsrl.routing.bq import static_from_instances  # noqa: E402
from opsrl.routing.labels import load_labels  # noqa: E402
from opsrl.routing.policy import load_policy  # noqa: E402
from opsrl.routing.train import _Run, prepare_labels  # noqa: E402


def one_step_gradients(problem: str, data: str, out_file: str = "") -> tuple[float, dict]:
    """One training step of a tiny policy on the whole label file as one global batch: its loss and gradients.

    Run in each process of a group (``distributed.launch``) or alone; rank 0 saves its answer to ``out_file``.
    """
    ctx = distributed.context("cpu")
    _, insts, arrays = load_labels(data)
    static = static_from_instances(problem, insts)
    labels = prepare_labels(problem, static, arrays, np.random.default_rng(0))
    policy = tiny(problem).train()
    run = _Run(problem, policy, torch.optim.SGD(policy.parameters(), lr=0.0), static, labels, len(insts),
               len(insts), "cpu", ctx)
    loss = run.step(torch.arange(len(insts)), np.random.default_rng(1))
    grads = {n: p.grad.clone() for n, p in policy.named_parameters()}
    if ctx.is_main and out_file:
        torch.save((loss, grads), out_file)
    return loss, grads


def _train_cli(data: Path, out: Path) -> tuple[int, str]:
    """``opsrl train`` of one step on ``data`` (here alone, or as one rank of a group): exit code, stdout."""
    from opsrl.cli.app import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(["train", "-p", "tsp", "--data", str(data), "--out", str(out), "--batch", "8", "--max-steps", "1",
                  "--lr", "1e-3", "--device", "cpu", "--json"])
        except SystemExit as exc:
            return int(exc.code or 0), buf.getvalue()
    return 0, buf.getvalue()


def group_member(kp_data: str, tsp_data: str, tmp: str) -> None:
    """What each process of the two-process group does: one gradient step, then ``opsrl train`` as torchrun runs it."""
    rank = int(os.environ["RANK"])
    one_step_gradients("kp", kp_data, str(Path(tmp) / "grads.pt"))
    code, out = _train_cli(Path(tsp_data), Path(tmp) / "two.safetensors")
    (Path(tmp) / f"cli{rank}.txt").write_text(f"{code}\n{out}")


def test_two_gloo_processes_train_like_one(tmp_path) -> None:
    """Two processes (launch, then the CLI under their torchrun-style environment) against one process."""
    kp, _, _ = label_file(tmp_path, "kp", 6, 10)  # kp: rows carry different numbers of targets
    tsp, _, _ = label_file(tmp_path, "tsp", 5, 136)  # the CLI holds out 128 instances for validation
    distributed.launch(group_member, 2, kp_data=str(kp), tsp_data=str(tsp), tmp=str(tmp_path))

    loss, grads = one_step_gradients("kp", str(kp))
    loss2, grads2 = torch.load(tmp_path / "grads.pt", weights_only=True)
    assert loss2 == pytest.approx(loss, rel=1e-6)
    assert set(grads2) == set(grads) and sum(float(g.abs().sum()) for g in grads.values()) > 0
    for name, g in grads.items():  # DDP's averaged gradient is the single-process gradient of the global batch
        torch.testing.assert_close(grads2[name], g, rtol=1e-5, atol=1e-7, msg=name)

    code, out1 = _train_cli(tsp, tmp_path / "one.safetensors")
    assert code == 0, out1
    code2, out2 = (tmp_path / "cli0.txt").read_text().split("\n", 1)
    assert code2 == "0" and (tmp_path / "cli1.txt").read_text() == "0\n"  # rank 1 prints nothing
    one, two = json.loads(out1), json.loads(out2)
    assert one["steps"] == two["steps"] == 1
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
    state, meta = load_checkpoint(tmp_path / "two.safetensors")
    assert not any(k.startswith("module.") for k in state) and meta["training"]["processes"] == 2
    first, _ = load_checkpoint(tmp_path / "one.safetensors")
    for name in first:  # one Adam step (lr 1e-3) from the same start
        torch.testing.assert_close(state[name], first[name], rtol=0, atol=2e-3, msg=name)
    assert load_policy("tsp", tmp_path / "two.safetensors").config == load_policy("tsp", tmp_path / "one").config


def test_launch_and_nproc_check_the_process_count(cli, tmp_path) -> None:
    with pytest.raises(UsageError, match="--nproc must be a positive integer"):
        distributed.launch(one_step_gradients, 0)
    assert distributed.launch(lambda x: x + 1, 1, x=1) == 2  # one process: run here
    code, _, err = cli("train", "-p", "tsp", "--data", tmp_path / "x.npz", "--out", tmp_path / "m", "--nproc", "0")
    assert code == 2 and "--nproc" in err
