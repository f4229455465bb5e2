"""HDPO: the loss goes down, every policy kind runs, checkpoints round-trip, CLI errors are one line."""

from __future__ import annotations

import pytest
import torch

from opsrl.inventory.policy import PolicyConfig, load_policy, make_policy
from opsrl.inventory.problem import build
from opsrl.inventory.simulator import Network
from opsrl.inventory.train import HDPOConfig, save_policy, train

TINY = dict(train_scenarios=256, dev_scenarios=128, test_scenarios=32, test_periods=40, test_warmup=10,
            periods=20, warmup=5)


def test_loss_goes_down(tmp_path):
    inst = build("one_store_backlog", **TINY)
    curve = tmp_path / "c.csv"
    _, m = train(inst, "mlp", HDPOConfig(steps=40, batch=128, lr=1e-2, eval_every=10, patience=100),
                 hidden=16, curve=curve)
    rows = curve.read_text().splitlines()[1:]
    first, last = float(rows[0].split(",")[3]), m["best_dev_cost"]
    assert last < first
    assert m["best_dev_gap_pct"] is not None


@pytest.mark.parametrize("kind", ["mlp", "symmetric", "gnn"])
def test_policies_map_to_nonnegative_requests(kind):
    inst = build("one_warehouse", n_stores=3, **TINY)
    net = Network(inst)
    pol = make_policy(PolicyConfig(kind=kind, hidden=16), net)
    state = net.initial(5)
    out = pol(net, state)
    assert out.shape == (5, net.E) and bool((out >= 0).all())
    out.sum().backward()
    assert all(p.grad is not None for p in pol.parameters() if p.requires_grad)


def test_checkpoint_roundtrip_and_solver(tmp_path):
    from opsrl.core.run import run_solver

    inst = build("one_store_lost", p=4, lead_time=1, **TINY)
    pol, m = train(inst, "mlp", HDPOConfig(steps=5, batch=64, eval_every=5), hidden=8)
    path = save_policy(pol, inst, m, tmp_path / "p.safetensors", ["test"], {})
    back, meta, _ = load_policy(inst, path)
    assert meta["architecture"]["kind"] == "mlp"
    res = run_solver(inst, "hdpo", time_limit=60, params={"checkpoint": str(path)}, isolate=False)
    assert res.feasible and res.objective > 0
    other = build("one_store_lost", p=9, lead_time=1, **TINY)
    from opsrl.core.errors import OpsrlError

    with pytest.raises(OpsrlError, match="trained for setting"):
        load_policy(other, path)


def test_cli_errors_are_one_line(cli, tmp_path):
    code, out, err = cli("solve", "--problem", "inventory", "--instance", "no_such_setting")
    assert code == 1 and len(err.strip().splitlines()) == 1
    code, out, err = cli("solve", "--problem", "inventory", "--instance", "one_store_lost", "--set", "p=x")
    assert code == 2 and "expected a float" in err
    code, out, err = cli("train", "--problem", "inventory", "--setting", "one_store_lost", "--policy", "cnn",
                         "--out", str(tmp_path / "x.safetensors"))
    assert code == 2 and "mlp, symmetric, gnn" in err
    code, out, err = cli("train", "--problem", "inventory", "--setting", "nowhere", "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown inventory setting" in err
    code, out, err = cli("solve", "--problem", "inventory", "--instance", "serial", "--solver", "hdpo",
                         "--param", "checkpoint=" + str(tmp_path / "missing.safetensors"))
    assert code == 1 and "checkpoint not found" in err
    bad = tmp_path / "net.json"
    bad.write_text('{"x": 1}')
    code, out, err = cli("solve", "--problem", "inventory", "--instance", bad)
    assert code == 1 and err.count(str(bad)) == 1 and "missing field 'locations'" in err


def test_train_cli_writes_checkpoint(cli, tmp_path):
    out = tmp_path / "ck.safetensors"
    code, stdout, err = cli("train", "--problem", "inventory", "--setting", "one_store_backlog", "--policy", "mlp",
                            "--steps", "3", "--batch", "32", "--set", "train_scenarios=64", "--set", "dev_scenarios=32",
                            "--set", "hidden=8", "--out", str(out), "--json")
    assert code == 0, err
    assert out.is_file() and out.with_suffix(".json").is_file() and out.with_suffix(".curve.csv").is_file()
    torch.manual_seed(0)


def test_dev_gaps_are_taken_against_a_reference_policy_on_the_same_dev_scenarios():
    """A backlogged chain is measured against Clark-Scarf echelon stock simulated on the dev scenarios, not
    against the published figure of another sample (on the serial dev set they differ by 0.8 %)."""
    from opsrl.inventory.simulator import Network, run_policy
    from opsrl.inventory.solvers import base_stock_policy, clark_scarf_levels
    from opsrl.inventory.train import dev_reference

    inst = build("serial", dev_scenarios=256)
    value, source = dev_reference(inst)
    assert "echelon stock on the dev scenarios" in source
    expected, _ = run_policy(inst, base_stock_policy(Network(inst), clark_scarf_levels(inst)), "dev", record=False)
    assert value == pytest.approx(expected, rel=1e-9)
    assert dev_reference(build("one_warehouse", n_stores=3)) == (None, "")  # no reference policy, no published figure


def test_resume_warm_starts_from_a_checkpoint(cli, tmp_path):
    """--resume continues from the checkpoint's weights and architecture; a clashing --policy is one line, exit 2."""
    import json

    small = dict(n_stores=3, train_scenarios=256, dev_scenarios=128, test_scenarios=32, warmup=5, periods=20,
                 test_warmup=10, test_periods=40, hidden=8, eval_every=1)  # warm-ups first: each --set is checked
    sets = [a for k, v in small.items() for a in ("--set", f"{k}={v}")]
    first = tmp_path / "first.safetensors"
    code, out, err = cli("train", "-p", "inventory", "--setting", "one_warehouse", "--policy", "symmetric", "--steps", "30",
                         "--batch", "64", "--lr", "1e-2", *sets, "--out", first, "--json")
    assert code == 0, err
    trained = json.loads(out)["best_dev_cost"]
    code, out, err = cli("train", "-p", "inventory", "--setting", "one_warehouse", "--steps", "1", "--batch", "64",
                         "--lr", "1e-9", *sets, "--resume", first, "--out", tmp_path / "second", "--json")
    assert code == 0, err
    assert json.loads(out)["best_dev_cost"] == pytest.approx(trained, rel=1e-5)  # the same weights, not a fresh start
    meta = json.loads((tmp_path / "second.json").read_text())
    assert meta["architecture"]["kind"] == "symmetric" and meta["training"]["resumed_from"] == "first.safetensors"
    assert len(meta["reproduce"]) == 2  # the run that made the starting weights, then this one
    code, _, err = cli("train", "-p", "inventory", "--setting", "one_warehouse", "--policy", "gnn", *sets,
                       "--resume", first, "--out", tmp_path / "third")
    assert code == 2 and "holds a symmetric policy" in err and "Traceback" not in err
