"""The milp commands: one-line errors with the documented exit codes."""

from __future__ import annotations


def test_train_option_errors(cli, milp_data):
    code, _, err = cli("train", "--problem", "milp", "--out", "x.safetensors")
    assert code == 2 and "--distribution" in err
    code, _, err = cli("train", "--problem", "milp", "--distribution", "setcover-easy", "--out", "x.safetensors")
    assert code == 1 and "opsrl milp collect" in err
    code, _, err = cli("milp", "collect", "--distribution", "nope", "--samples", "3")
    assert code == 2 and "nope" in err
