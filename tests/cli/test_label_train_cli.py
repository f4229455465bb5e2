"""``opsrl label`` end to end and ``opsrl train``'s option checks, through the real entry point."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import opsrl
from opsrl.routing.labels import label_solution, load_labels, runs_path
from tests.cli.test_cli import assert_one_line_error


def _fails(result: tuple[int, str, str], code: int, *fragments: str) -> None:
    """``result`` is what the ``cli`` fixture returns: (exit code, stdout, stderr)."""
    assert_one_line_error(result[0], result[2], code, *fragments)


def test_label_writes_a_label_file_and_resumes(cli, tmp_path):
    out = tmp_path / "tsp8.npz"
    code, stdout, err = cli("label", "-p", "tsp", "-n", "8", "-c", "2", "-s", "fasttsp", "-t", "0.2", "--seed", "3",
                            "-j", "2", "--out", out)
    assert code == 0, err
    assert "labelled 2 of 2 tsp instances of size 8 with fasttsp" in stdout
    problem, insts, arrays = load_labels(out)
    assert problem == "tsp" and [i.name for i in insts] == ["tsp8-s3-0", "tsp8-s3-1"]
    for k, inst in enumerate(insts):
        assert opsrl.evaluate(inst, label_solution("tsp", arrays, k)).objective == arrays["objective"][k]

    code, _, err = cli("label", "-p", "tsp", "-n", "8", "-c", "3", "-s", "fasttsp", "-t", "0.2", "--seed", "3",
                       "--out", out)
    assert_one_line_error(code, err, 1, str(out), "--resume")
    code, stdout, err = cli("label", "-p", "tsp", "-n", "8", "-c", "3", "-s", "fasttsp", "-t", "0.2", "--seed", "3",
                            "--out", out, "--resume", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["labelled"] == 3 and summary["runs"] == str(runs_path(out))
    assert len(pd.read_parquet(runs_path(out))) == 3
    code, _, err = cli("label", "-p", "tsp", "-n", "8", "-c", "3", "-s", "fasttsp", "-t", "0.5", "--seed", "3",
                       "--out", out, "--resume")
    assert_one_line_error(code, err, 1, "same time limit")


def test_label_with_solver_params_and_default_time_limit(cli, tmp_path):
    out = tmp_path / "kp.npz"
    code, stdout, err = cli("label", "-p", "kp", "-n", "10", "-c", "2", "-s", "ortools", "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["time_limit"] == 1.0
    code, _, err = cli("label", "-p", "cvrp", "-n", "8", "-c", "1", "-s", "pyvrp", "-t", "0.2",
                       "--param", "max_iterations=50", "--out", tmp_path / "c.npz", "--json")
    assert code == 0, err
    assert json.loads(pd.read_parquet(runs_path(tmp_path / "c.npz"))["params"][0]) == {"max_iterations": 50}


def test_label_bad_options(cli, tmp_path):
    base = ["label", "-p", "tsp", "-n", "8", "-c", "2", "-s", "fasttsp"]
    _fails(cli(*base, "--out", tmp_path / "x.json"), 2, ".npz")
    _fails(cli(*base, "-t", "-1", "--out", tmp_path / "x.npz"), 2, "--time-limit")
    _fails(cli(*base[:-1], "hgs", "--out", tmp_path / "x.npz"), 2, "unknown solver 'hgs'")
    _fails(cli(*base, "--param", "depth=2", "--out", tmp_path / "x.npz"), 2, "no option 'depth'")
    _fails(cli("label", "-p", "tsp", "-n", "0", "-c", "2", "-s", "fasttsp", "--out",
                               tmp_path / "x.npz"), 2, "--size")
    assert not list(tmp_path.iterdir())


@pytest.fixture
def labels(tmp_path):
    from opsrl.routing.labels import save_labels

    insts = [opsrl.generate("tsp", 6, seed=k) for k in range(4)]
    path = tmp_path / "tsp6.npz"
    save_labels("tsp", insts, [list(range(6))] * 4, path, "manual", 1)
    return path


def test_train_help(cli):
    code, out, err = cli("train", "--help")
    assert code == 0 and "--max-steps" in out and "--preset" in out


def test_train_checks_its_options_before_training(cli, tmp_path, labels, monkeypatch):
    monkeypatch.setitem(sys.modules, "opsrl.routing.train", None)  # any training attempt would fail loudly
    ckpt = tmp_path / "model.ckpt"
    base = ["train", "-p", "tsp", "--data", labels, "--out", ckpt]
    _fails(cli(*base, "--epochs", "0"), 2, "--epochs")
    _fails(cli(*base, "--batch", "-4"), 2, "--batch")
    _fails(cli(*base, "--max-steps", "0"), 2, "--max-steps")
    _fails(cli(*base, "--lr", "0"), 2, "--lr")
    _fails(cli(*base, "--preset", "huge"), 2, "--preset huge", "small, paper")
    _fails(cli(*base, "--device", "tpu"), 2, "--device tpu")
    _fails(cli("train", "-p", "knap", "--data", labels, "--out", ckpt), 2, "unknown problem")
    _fails(cli("train", "-p", "tsp", "--data", tmp_path / "none.npz", "--out", ckpt), 1,
                          "none.npz", "not found")
    _fails(cli("train", "-p", "cvrp", "--data", labels, "--out", ckpt), 1, "holds tsp labels")
    plain = tmp_path / "plain.npz"
    opsrl.save_instance(opsrl.generate("tsp", 6, seed=0, count=2), plain)
    _fails(cli("train", "-p", "tsp", "--data", plain, "--out", ckpt), 1, "not a label file")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    _fails(cli("train", "-p", "tsp", "--data", junk, "--out", ckpt), 1, "junk.npz")
    _fails(cli(*base, "--resume", tmp_path / "old.ckpt"), 1, "old.ckpt", "not found")
    _fails(cli(*base, "--set", "warmup=3"), 2, "--set warmup", "lr_decay=", "decay_every=")
    _fails(cli(*base, "--set", "lr_decay=1.5"), 2, "--set lr_decay=1.5", "(0, 1]")
    _fails(cli(*base, "--set", "lr_decay=fast"), 2, "--set lr_decay=fast")
    _fails(cli(*base, "--set", "decay_every=0"), 2, "--set decay_every=0", "integer >= 1")
    _fails(cli(*base, "--set", "precision=half"), 2, "--set precision=half", "auto, fp32, bf16")
    _fails(cli(*base, "--set", "lr_epoch=0"), 2, "--set lr_epoch=0", "integer >= 1")
    _fails(cli(*base, "--set", "average_from=0"), 2, "--set average_from=0", "integer >= 1")
    _fails(cli(*base, "--set", "average_every=2"), 2, "--set average_every=", "average_from=")
    # valid options reach the trainer: here it is missing, which is one line too
    _fails(cli(*base, "--max-steps", "3"), 1, "training is not available")
    assert not ckpt.exists()


@pytest.mark.skipif(importlib.util.find_spec("opsrl.routing.train") is None, reason="opsrl.routing.train not there yet")
def test_train_tiny_end_to_end(cli, tmp_path):
    from opsrl.routing.labels import save_labels

    data = tmp_path / "tsp6.npz"  # the trainer holds out the last 128 instances for validation
    insts = opsrl.generate("tsp", 6, seed=0, count=136)
    save_labels("tsp", insts, [list(range(6))] * len(insts), data, "manual", 1)
    code, out, err = cli("train", "-p", "tsp", "--data", data, "--out", tmp_path / "model", "--max-steps", "3",
                         "--batch", "2", "--device", "cpu", "--epochs", "1", "--json",
                         "--set", "lr_decay=0.5", "--set", "decay_every=2", "--set", "precision=bf16")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["steps"] == 3 and Path(metrics["checkpoint"]).is_file()
    recipe = json.loads(Path(metrics["checkpoint"]).with_suffix(".json").read_text())["training"]
    assert (recipe["lr_decay"], recipe["decay_every"], recipe["precision"]) == (0.5, 2, "bf16")


@pytest.mark.skipif(importlib.util.find_spec("opsrl.routing.train") is None, reason="opsrl.routing.train not there yet")
def test_lr_epoch_starts_the_decay(cli, tmp_path):
    """--set lr_epoch=E keeps the rate at --lr up to epoch E and decays it after: the learning curve records it."""
    from opsrl.routing.labels import save_labels

    data = tmp_path / "tsp6.npz"
    insts = opsrl.generate("tsp", 6, seed=0, count=132)  # 4 training instances, 2 steps an epoch
    save_labels("tsp", insts, [list(range(6))] * len(insts), data, "manual", 1)
    code, out, err = cli("train", "-p", "tsp", "--data", data, "--out", tmp_path / "model", "--batch", "2",
                         "--device", "cpu", "--epochs", "4", "--lr", "1e-3", "--json",
                         "--set", "lr_decay=0.5", "--set", "lr_epoch=2")
    assert code == 0, err
    with open(tmp_path / "model.curve.csv") as f:
        rates = [float(row["lr"]) for row in csv.DictReader(f)]
    assert rates == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])
