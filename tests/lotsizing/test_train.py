"""PPO / PDPPO: learning on a small setting, the shared update, checkpoints and the train entry point."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opsrl.core.errors import UsageError  # noqa: E402
from opsrl.core.train_options import TrainOptions  # noqa: E402
from opsrl.lotsizing.env import features  # noqa: E402
from opsrl.lotsizing.policy import LotSizingPolicy, PolicyConfig  # noqa: E402
from opsrl.lotsizing.train import PPOConfig, rollout_cost, train, train_from_options, validation_scenarios  # noqa: E402
from tests.lotsizing.helpers import small  # noqa: E402


def test_masked_choices_have_zero_probability():
    s = small()
    pol = LotSizingPolicy(PolicyConfig(3, 2), s.mask)
    x = torch.from_numpy(features(s, np.zeros((4, 3), dtype=int), np.zeros((4, 2), dtype=int)))
    probs = pol.distribution(x).probs
    assert torch.all(probs[:, 0, 3] == 0) and torch.all(probs[:, 1, 1] == 0)
    acts = pol.act(s, np.zeros((50, 3), dtype=int), np.zeros((50, 2), dtype=int), greedy=False)
    assert s.mask[np.arange(2)[None, :], acts].all()


def test_discounted_returns():
    from opsrl.lotsizing.train import discounted_returns

    r = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    g = discounted_returns(r, 0.5)
    assert g[:, 0] == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])
    assert g[:, 1] == pytest.approx([0.5, 1.0, 0.0])


def test_standardised_returns():
    from opsrl.lotsizing.train import standardised

    g = np.array([[-3.0, -1.0], [-2.0, 0.0]])
    assert standardised(g, "scale") is g
    z = standardised(g, "standardise")
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1, rel=1e-5)
    assert np.argsort(z, axis=None).tolist() == np.argsort(g, axis=None).tolist()


# the authors' code's details (benchmarks/lotsizing.py --recipe authors), PDPPO's critics fitted through min(V, V_x)
AUTHORS = {"batch": 4, "epochs": 40, "returns": "standardise", "adv_norm": False, "entropy": 0.012,
           "entropy_reduce": "mean", "ratio": "machine", "weight_decay": 0.001}


@pytest.mark.parametrize("algo,steps,options", [
    ("ppo", 6400, {}), ("pdppo", 6400, {}),
    ("pdppo", 12800, {"post_return": "setup"}),  # the setup return learns slower
    ("pdppo", 6400, {"ratio": "machine"}),  # the authors' per-machine clipped ratio
    ("ppo", 6400, AUTHORS), ("pdppo", 6400, {**AUTHORS, "post_critic": "min"})])
def test_training_lowers_cost_on_a_small_setting(algo, steps, options):
    s = small()
    torch.manual_seed(0)
    untrained = LotSizingPolicy(PolicyConfig(3, 2, 64, algo == "pdppo"), s.mask).eval()
    before = rollout_cost(untrained, s, validation_scenarios(s, 20))
    config = PPOConfig(algo=algo, steps=steps, eval_every=2, **options)
    pol, metrics, curve = train(s, config, seed=0)
    after = rollout_cost(pol, s, validation_scenarios(s, 20))
    assert after < 0.8 * before, (before, after)
    assert curve[-1]["train_cost"] < curve[0]["train_cost"]  # the sampled policy improves too
    assert np.isnan(curve[0]["loss_post"]) == (algo == "ppo")


def test_train_from_options_writes_checkpoint_and_curve(tmp_path, monkeypatch):
    from opsrl.core.run import run_solver
    from opsrl.lotsizing.problem import LotSizing

    path = tmp_path / "tiny.json"
    LotSizing().save([small()], path)
    out = tmp_path / "ck.safetensors"
    opts = TrainOptions(problem="lotsizing", out=out, device="cpu", seed=1, progress=False, setting=str(path),
                        algo="pdppo", steps=2000)
    metrics = train_from_options(opts)
    assert out.is_file() and out.with_suffix(".json").is_file() and (tmp_path / "ck.curve.csv").is_file()
    assert metrics["steps"] >= 2000
    inst = LotSizing().load(path)[0]
    res = run_solver(inst, "pdppo", time_limit=60, params={"checkpoint": str(out)}, isolate=False)
    assert res.feasible
    with pytest.raises(UsageError, match="--data"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, data=path, setting=str(path)))
    with pytest.raises(UsageError, match="--algo"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(path), algo="a2c"))
    with pytest.raises(UsageError, match="--setting"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting="99x99"))
    with pytest.raises(UsageError, match="post_return"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(path), sets={"post_return": "x"}))
    with pytest.raises(UsageError, match="ratio"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(path), sets={"ratio": "x"}))
    with pytest.raises(UsageError, match="post_critic=min .* needs post_return=full"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(path),
                                        sets={"post_critic": "min", "post_return": "setup"}))
    with pytest.raises(UsageError, match="returns=x: expected one of scale, standardise"):
        train_from_options(TrainOptions(problem="lotsizing", out=out, setting=str(path), sets={"returns": "x"}))


def test_shipped_checkpoints_beat_the_heuristic():
    from opsrl.core.run import run_solver
    from opsrl.lotsizing.policy import shipped_checkpoint
    from opsrl.lotsizing.problem import LotSizing

    if not shipped_checkpoint("15x5").is_file():
        pytest.skip("no shipped lotsizing checkpoint")
    inst = LotSizing().builtin("15x5")
    pd = run_solver(inst, "pdppo", time_limit=60, isolate=False)
    heur = run_solver(inst, "heuristic", time_limit=60, isolate=False)
    assert pd.feasible and pd.objective < heur.objective
