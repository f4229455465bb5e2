"""TS-DDR: the dual-based gradient matches finite differences of the rolled-out cost, training lowers
the cost, and checkpoints round-trip through the tsddr solver."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opsrl.hydro.lp import DispatchLP  # noqa: E402
from opsrl.hydro.problem import HYDRO, HydroInstance, synthetic_system  # noqa: E402
from opsrl.hydro.train import StageLayer, load_policy, save, train  # noqa: E402


def tiny() -> HydroInstance:
    return HydroInstance("tiny", synthetic_system(4, n_hydro=2, n_thermal=3), stages=6, report=6, scenarios=8)


def test_stage_layer_gradient_matches_finite_differences():
    inst = tiny()
    s = inst.system
    lp = DispatchLP(s, targets=True)
    w = inst.test_paths()[:, 0][:3]
    v_in = torch.tensor(np.tile(0.5 * s.vmax, (3, 1)), requires_grad=True)
    target = torch.tensor(np.tile(0.48 * s.vmax, (3, 1)) * np.array([[1.0], [0.9], [1.02]]), requires_grad=True)
    obj, _ = StageLayer.apply(v_in, target, lp, w, {})
    obj.sum().backward()

    def f(vi, tg):
        return StageLayer.apply(torch.tensor(vi), torch.tensor(tg), lp, w, {})[0].sum().item()

    vi0, tg0 = v_in.detach().numpy(), target.detach().numpy()
    for i in range(s.n_hydro):
        e = np.zeros_like(tg0)
        e[:, i] = 1e-4 * s.vmax[i]
        fd_t = (f(vi0, tg0 + e) - f(vi0, tg0 - e)) / (2 * e[0, i])
        fd_v = (f(vi0 + e, tg0) - f(vi0 - e, tg0)) / (2 * e[0, i])
        assert target.grad[:, i].sum().item() == pytest.approx(fd_t, rel=1e-4, abs=1e-6)
        assert v_in.grad[:, i].sum().item() == pytest.approx(fd_v, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("algo", ["stage", "de"])
def test_training_lowers_the_cost(algo):
    inst = tiny()
    _, m = train(inst, iters=30, batch=4, lr=2e-2, hidden=16, algo=algo, eval_every=5, val_paths=8)
    vals = [c["val_cost"] for c in m["curve"] if c.get("val_cost") is not None]
    assert m["best_val_cost"] < vals[0] * 0.995


def test_checkpoint_round_trip_and_solver(tmp_path):
    inst = tiny()
    policy, m = train(inst, iters=3, batch=2, hidden=8, val_paths=2)
    path = save(policy, tmp_path / "p.safetensors", inst, m, "test")
    back, meta = load_policy(path, inst)
    assert meta["fingerprint"] == inst.system.fingerprint()
    from opsrl.hydro.solvers import solve_tsddr

    sol = solve_tsddr(inst, time_limit=10, seed=0, checkpoint=str(path))
    ev = HYDRO.evaluate(inst, sol.data)
    assert ev.feasible and ev.objective == pytest.approx(sol.stats["own_mean_cost"], rel=1e-5)
    other = HYDRO.override(inst, "load_scale", "1.1")
    with pytest.raises(Exception, match="trained on system"):
        load_policy(path, other)


def test_the_shipped_bolivia_rule_beats_myopic_on_the_same_paths(shared_data):
    """`opsrl solve --problem hydro --instance bolivia --solver tsddr` uses the shipped checkpoint (trained
    780 s on the full 126-stage case), and it is far cheaper than myopic dispatch on the same inflow paths."""
    from opsrl.hydro.problem import builtin_instance
    from opsrl.hydro.solvers import solve_myopic, solve_tsddr

    inst = HYDRO.override(builtin_instance("bolivia"), "scenarios", "4")
    sol = solve_tsddr(inst, time_limit=60, seed=0)
    assert sol.stats["checkpoint"] == "hydro_bolivia.safetensors" and "trained_here_s" not in sol.stats
    tsddr = HYDRO.evaluate(inst, sol.data)
    myopic = HYDRO.evaluate(inst, solve_myopic(inst, time_limit=60, seed=0).data)
    assert tsddr.feasible and tsddr.objective < 0.9 * myopic.objective
