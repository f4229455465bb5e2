"""Imitating the rolling-horizon MIP: demonstrations, DAgger labels, behaviour cloning, fine-tuning from it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opsrl.core.errors import InstanceFileError, UsageError  # noqa: E402
from opsrl.core.train_options import TrainOptions  # noqa: E402
from opsrl.lotsizing.imitate import (behaviour_clone, collect_demonstrations, load_demonstrations,  # noqa: E402
                                     trajectory_states)
from opsrl.lotsizing.policy import LotSizingPolicy, PolicyConfig  # noqa: E402
from opsrl.lotsizing.problem import LotSizing, simulate  # noqa: E402
from opsrl.lotsizing.train import PPOConfig, rollout_cost, train, train_from_options, validation_scenarios  # noqa: E402
from tests.lotsizing.helpers import small, tiny  # noqa: E402


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    s = small(horizon=12)
    path = tmp_path_factory.mktemp("demos") / "d.npz"
    collect_demonstrations(s, 6, path, seed=0, horizon=3, step_time=0.05)
    return s, path


def test_demonstrations_replay_and_resume(demos):
    s, path = demos
    d = load_demonstrations(path, s)
    assert d["actions"].shape == (6, 12, 2) and d["inventory"].shape == (6, 12, 3)
    for e in range(6):  # the stored states are the ones the MIP's own choices lead to
        invs, stps = trajectory_states(s, d["inventory"][e, 0], d["setup"][e, 0], d["actions"][e], d["demand"][e])
        assert np.array_equal(invs, d["inventory"][e]) and np.array_equal(stps, d["setup"][e])
    assert s.mask[np.arange(2)[None, None, :], d["actions"]].all()  # only choices the machines can make
    summary = collect_demonstrations(s, 6, path, seed=0, horizon=3, step_time=0.05)
    assert summary["new_episodes"] == 0
    with pytest.raises(InstanceFileError, match="3 items x 2 machines"):
        load_demonstrations(path, tiny())


def test_cloning_fits_the_mip_and_beats_an_untrained_actor(demos):
    s, path = demos
    d = load_demonstrations(path, s)
    torch.manual_seed(0)
    pol = LotSizingPolicy(PolicyConfig(3, 2, 64, False), s.mask)
    val = validation_scenarios(s, 20)
    before = rollout_cost(pol.eval(), s, val)
    metrics, curve = behaviour_clone(pol, s, d, epochs=40, batch=32, lr=3e-3, val=val, eval_every=5)
    assert curve[-1]["loss"] < 0.5 * curve[0]["loss"]
    assert curve[-1]["choice_accuracy"] > 0.8
    assert metrics["best_val_cost"] < 0.8 * before


def test_dagger_labels_the_states_the_policy_visits(demos, tmp_path):
    s, _ = demos

    class Idle:  # a policy that never produces: the MIP still labels what to do in its states
        def act(self, setting, inventory, setup, greedy=True):
            return np.zeros((len(inventory), setting.n_machines), dtype=np.int64)

    path = tmp_path / "dagger.npz"
    collect_demonstrations(s, 2, path, seed=3, horizon=3, step_time=0.05, policy=Idle())
    d = load_demonstrations(path, s)
    idle = np.zeros_like(d["actions"][0])
    for e in range(2):
        invs, stps = trajectory_states(s, d["inventory"][e, 0], d["setup"][e, 0], idle, d["demand"][e])
        assert np.array_equal(invs, d["inventory"][e])
    assert d["actions"].any()  # the MIP's labels are not the policy's


def test_train_bc_then_fine_tune_from_it(demos, tmp_path):
    from opsrl.core.run import run_solver

    s, path = demos
    setting = tmp_path / "small.json"
    LotSizing().save([s], setting)
    out = tmp_path / "bc.safetensors"
    metrics = train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(setting), algo="bc",
                                              epochs=10, sets={"demos": str(path), "hidden": "32"}, progress=False))
    assert out.is_file() and metrics["episodes"] == 6
    inst = LotSizing().load(setting)[0]
    assert run_solver(inst, "bc", time_limit=60, params={"checkpoint": str(out)}, isolate=False).feasible
    cloned = rollout_cost(*_load(inst, out), validation_scenarios(inst, PPOConfig().val_scenarios))
    config = PPOConfig(algo="ppo", steps=2400, hidden=32, eval_every=1, init=str(out), critic_warmup=2)
    pol, tuned, curve = train(inst, config, seed=0)
    assert tuned["best_val_cost"] <= cloned + 1e-9  # the start is kept unless fine-tuning beats it
    with pytest.raises(UsageError, match="demos=FILE"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(setting), algo="bc"))
    with pytest.raises(UsageError, match="init=.*not found"):
        train(inst, PPOConfig(algo="ppo", steps=100, init=str(tmp_path / "none")), seed=0)


def _load(inst, path):
    from opsrl.lotsizing.policy import load_policy

    return load_policy(inst, path)[0], inst


def test_demos_command_errors_are_one_line(cli, tmp_path):
    code, _, err = cli("lotsizing", "demos", "--setting", "99x9", "--out", tmp_path / "d.npz")
    assert code == 2 and "--setting 99x9" in err and err.count("\n") == 1
    code, _, err = cli("lotsizing", "demos", "--setting", "15x5", "--episodes", "0", "--out", tmp_path / "d.npz")
    assert code == 2 and "episodes >= 1" in err
    code, _, err = cli("lotsizing", "demos", "--setting", "15x5", "--out", tmp_path / "d.npz", "--dagger",
                       tmp_path / "none.safetensors")
    assert code == 1 and "checkpoint not found" in err
    code, _, err = cli("train", "--problem", "lotsizing", "--setting", "15x5", "--algo", "bc", "--set",
                       f"demos={tmp_path / 'none.npz'}", "--out", tmp_path / "bc.safetensors")
    assert code == 1 and "demonstration file not found" in err


def test_static_teacher_labels_its_assignment(tmp_path):
    from opsrl.lotsizing.static import search_assignment

    s = small(horizon=10)
    path = tmp_path / "static.npz"
    summary = collect_demonstrations(s, 3, path, seed=0, teacher="static")
    d = load_demonstrations(path, s)
    assert summary["teacher"] == "static" and d["actions"].shape == (3, 10, 2)
    assert (d["actions"] == search_assignment(s, seed=0).assignment).all()
    with pytest.raises(UsageError, match="unknown teacher 'lp'"):
        collect_demonstrations(s, 3, tmp_path / "x.npz", teacher="lp")
