"""Data-parallel HDPO: two gloo processes compute the single-process gradient of a global batch of scenarios
(the policy is called once per period before one backward), ``opsrl train --nproc 2`` trains like one
process, and its checkpoint loads anywhere (no ``module.``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from opsrl.core import distributed  # noqa: E402
from opsrl.core.checkpoint import load_checkpoint  # noqa: E402
from opsrl.inventory.policy import PolicyConfig, load_policy, make_policy  # noqa: E402
from opsrl.inventory.problem import build, scenarios  # noqa: E402
from opsrl.inventory.simulator import Network  # noqa: E402
from opsrl.inventory.train import hdpo_step  # noqa: E402

TINY = {"n_stores": 3, "train_scenarios": 64, "dev_scenarios": 32, "test_scenarios": 8, "test_warmup": 2,
        "test_periods": 12, "warmup": 2, "periods": 8}  # warm-ups first: --set applies them in this order
SETS = [item for key, value in TINY.items() for item in ("--set", f"{key}={value}")]


def one_step(out_file: str = "") -> tuple[float, dict]:
    """One HDPO step of a tiny symmetric policy on 15 scenarios (shares of 7 and 8): its loss and gradients.

    Run in each process of a group (``distributed.launch``) or alone; rank 0 saves its answer to ``out_file``.
    """
    ctx = distributed.context("cpu")
    inst = build("one_warehouse", **TINY)
    net = Network(inst)
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(kind="symmetric", hidden=8), net)
    demand = torch.as_tensor(scenarios(inst, "train"))
    rows = torch.randperm(len(demand), generator=torch.Generator().manual_seed(1))[:15]
    loss = hdpo_step(distributed.wrap(policy, ctx), net, demand, rows, torch.optim.SGD(policy.parameters(), lr=0.0),
                     ctx)
    grads = {n: p.grad.clone() for n, p in policy.named_parameters()}
    if ctx.is_main and out_file:
        torch.save((loss, grads), out_file)
    return loss, grads


def _train_cli(out: Path, *extra: str) -> tuple[int, str]:
    """``opsrl train -p inventory`` for 3 steps (here alone, or as one rank of a group): exit code, stdout."""
    from opsrl.cli.app import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(["train", "-p", "inventory", "--setting", "one_warehouse", *SETS, "--policy", "mlp", "--set",
                  "hidden=8", "--set", "eval_every=2", "--steps", "3", "--batch", "15", "--lr", "1e-3", "--device",
                  "cpu", "--out", str(out), "--json", *extra])
        except SystemExit as exc:
            return int(exc.code or 0), buf.getvalue()
    return 0, buf.getvalue()


def group_member(tmp: str) -> None:
    """What each process of the two-process group does: one HDPO step, then ``opsrl train`` as torchrun runs it."""
    rank = int(os.environ["RANK"])
    one_step(str(Path(tmp) / "grads.pt"))
    code, out = _train_cli(Path(tmp) / "two.safetensors", "--nproc", "2")  # under torchrun: runs here
    (Path(tmp) / f"cli{rank}.txt").write_text(f"{code}\n{out}")


def test_two_gloo_processes_train_like_one(tmp_path) -> None:
    distributed.launch(group_member, 2, tmp=str(tmp_path))

    loss, grads = one_step()
    loss2, grads2 = torch.load(tmp_path / "grads.pt", weights_only=True)
    assert loss2 == pytest.approx(loss, rel=1e-6)
    assert set(grads2) == set(grads) and sum(float(g.abs().sum()) for g in grads.values()) > 0
    for name, g in grads.items():  # DDP's averaged gradient is the single-process gradient of the global batch
        torch.testing.assert_close(grads2[name], g, rtol=1e-5, atol=1e-7, msg=name)

    code, out1 = _train_cli(tmp_path / "one.safetensors")
    assert code == 0, out1
    code2, out2 = (tmp_path / "cli0.txt").read_text().split("\n", 1)
    assert code2 == "0" and (tmp_path / "cli1.txt").read_text() == "0\n"  # rank 1 prints nothing
    one, two = json.loads(out1), json.loads(out2)
    assert one["steps"] == two["steps"] == 3 and (one["processes"], two["processes"]) == (1, 2)
    assert two["best_dev_cost"] == pytest.approx(one["best_dev_cost"], rel=1e-4)
    state, meta = load_checkpoint(tmp_path / "two.safetensors")
    assert not any(k.startswith("module.") for k in state) and meta["training"]["processes"] == 2
    assert "--nproc 2" in meta["reproduce"][0]
    first, _ = load_checkpoint(tmp_path / "one.safetensors")
    for name in first:  # three Adam steps (lr 1e-3) from the same start
        torch.testing.assert_close(state[name], first[name], rtol=0, atol=1e-4, msg=name)
    assert (tmp_path / "two.curve.csv").read_text().count("\n") == (tmp_path / "one.curve.csv").read_text().count("\n")
    policy, _, _ = load_policy(build("one_warehouse", **TINY), tmp_path / "two.safetensors")
    assert policy.config.hidden == 8


def test_cli_launches_nproc_processes(cli, tmp_path, monkeypatch) -> None:
    """``--nproc 2`` reaches ``distributed.launch`` with the inventory trainer; rank 0's metrics are printed."""
    from opsrl.inventory.train import train_from_options

    calls = []

    def fake_launch(fn, nproc, **kwargs):
        calls.append((fn, nproc, kwargs["options"]))
        return {"best_dev_cost": 1.5, "checkpoint": str(tmp_path / "x.safetensors")}

    monkeypatch.setattr(distributed, "launch", fake_launch)
    code, out, err = cli("train", "-p", "inventory", "--setting", "one_store_lost", "--out", tmp_path / "x",
                         "--nproc", "2", "--json")
    assert code == 0, err
    assert calls[0][0] is train_from_options and calls[0][1] == 2 and calls[0][2].nproc == 2
    assert json.loads(out)["best_dev_cost"] == 1.5


def test_nproc_is_checked(cli, tmp_path) -> None:
    """--nproc must be positive; a family whose trainer is not data parallel rejects it before any process starts."""
    code, _, err = cli("train", "-p", "inventory", "--setting", "one_store_lost", "--out", tmp_path / "x",
                       "--nproc", "0")
    assert code == 2 and "--nproc must be a positive integer" in err
    code, _, err = cli("train", "-p", "lotsizing", "--setting", "15x5", "--out", tmp_path / "x", "--nproc", "2")
    assert code == 2 and "--nproc: training lotsizing does not take this option" in err
