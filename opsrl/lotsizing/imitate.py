"""Imitation of a teacher (the rolling-horizon MIP, or a fixed assignment): demonstrations, and behaviour cloning
into the PPO actor.

The rolling-horizon MIP plans well but takes a fraction of a second per period; the factorised actor
decides in a millisecond. Cloning the MIP's choices on the training distribution (random initial states,
sampled demand) gives the actor a start that PPO / PDPPO can then fine-tune (``PPOConfig.init``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import InstanceFileError, UsageError
from opsrl.lotsizing.env import demand_step, features, post_decision
from opsrl.lotsizing.problem import LotSizingSetting, random_states, sample_demand
from opsrl.lotsizing.solvers import expected_forecast, mip_choice

DEMO_KEYS = ("inventory", "setup", "actions", "demand")


def trajectory_states(setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, actions: np.ndarray,
                      demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The states (T, n) inventories and (T, m) setups in which ``actions`` (T, m) were taken on ``demand``."""
    T = len(actions)
    invs = np.zeros((T, setting.n_items), dtype=np.int64)
    stps = np.zeros((T, setting.n_machines), dtype=np.int64)
    inv, stp = inventory[None].copy(), setup[None].copy()
    for t in range(T):
        invs[t], stps[t] = inv[0], stp[0]
        post, stp, _ = post_decision(setting, inv, stp, actions[t][None], check=False)
        inv, _, _ = demand_step(setting, post, demand[t][None])
    return invs, stps


def load_demonstrations(path: Path, setting: LotSizingSetting) -> dict[str, np.ndarray]:
    """Demonstrations from ``path`` (episodes x periods), checked against the setting's dimensions."""
    try:
        with np.load(path) as data:
            demos = {k: data[k] for k in DEMO_KEYS}
    except FileNotFoundError:
        raise InstanceFileError(path, "demonstration file not found (make one with opsrl lotsizing demos)") from None
    except (KeyError, ValueError, OSError) as exc:
        raise InstanceFileError(path, f"not a lot-sizing demonstration file ({type(exc).__name__})") from None
    n, m = setting.n_items, setting.n_machines
    if demos["inventory"].shape[-1] != n or demos["setup"].shape[-1] != m:
        raise InstanceFileError(path, f"demonstrations of {demos['inventory'].shape[-1]} items x "
                                      f"{demos['setup'].shape[-1]} machines, setting {setting.name} has {n} x {m}")
    return demos


TEACHERS = ("mip", "static")


def collect_demonstrations(setting: LotSizingSetting, episodes: int, out: Path, *, seed: int = 0, horizon: int = 5,
                           step_time: float = 0.2, policy: Any = None, progress: bool = False,
                           teacher: str = "mip") -> dict[str, Any]:
    """Label ``episodes`` training episodes (random initial states, sampled demand) with a teacher's choices.

    The teacher is the rolling-horizon MIP (``mip``) or the best fixed machine-to-item assignment
    (``static``, searched once on sampled scenarios: opsrl.lotsizing.static). Without ``policy`` the teacher
    also decides, so the states are its own (behaviour cloning); with one, the policy decides and the teacher
    only labels the states the policy visits (DAgger). Resumable: episodes already in ``out`` are kept
    (episode e always draws the same random numbers), and the file is rewritten atomically after each new
    episode.
    """
    from opsrl.lotsizing.train import progress_bar

    if episodes < 1 or horizon < 1 or step_time <= 0:
        raise UsageError("demonstrations need episodes >= 1, horizon >= 1 and step_time > 0")
    if teacher not in TEACHERS:
        raise UsageError(f"unknown teacher {teacher!r}: expected one of {', '.join(TEACHERS)}")
    out = Path(out)
    demos = load_demonstrations(out, setting) if out.is_file() else {k: None for k in DEMO_KEYS}
    done = 0 if demos["actions"] is None else len(demos["actions"])
    T = setting.horizon
    if teacher == "static":
        from opsrl.lotsizing.static import search_assignment

        assignment = search_assignment(setting, seed=seed).assignment
        label = lambda inv, stp, t: assignment  # noqa: E731
    else:
        forecast = expected_forecast(setting, horizon)
        label = lambda inv, stp, t: mip_choice(setting, inv, stp, forecast[:min(horizon, T - t)],  # noqa: E731
                                               step_time=step_time, seed=seed)[0]
    t0 = time.perf_counter()
    with progress_bar(progress) as bar:
        task = bar.add_task(f"{teacher} teacher {setting.name}", total=episodes * T, completed=done * T, info="")
        for e in range(done, episodes):
            rng = np.random.default_rng([seed, 29, e])
            inv0, stp0 = random_states(setting, rng, 1)
            demand = sample_demand(setting.demand, rng, (T, setting.n_items))
            actions = np.zeros((T, setting.n_machines), dtype=np.int64)
            invs = np.zeros((T, setting.n_items), dtype=np.int64)
            stps = np.zeros_like(actions)
            inv, stp = inv0, stp0
            for t in range(T):  # the states are recorded as they are visited
                invs[t], stps[t] = inv[0], stp[0]
                actions[t] = label(inv[0], stp[0], t)
                taken = actions[t] if policy is None else policy.act(setting, inv, stp)[0]
                post, stp, _ = post_decision(setting, inv, stp, taken[None], check=False)
                inv, _, _ = demand_step(setting, post, demand[t][None])
            new = {"inventory": invs, "setup": stps, "actions": actions, "demand": demand}
            demos = {k: new[k][None] if demos[k] is None else np.concatenate([demos[k], new[k][None]])
                     for k in DEMO_KEYS}
            tmp = out.with_suffix(".partial.npz")
            out.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(tmp, **demos)
            tmp.replace(out)
            bar.update(task, completed=(e + 1) * T)
    return {"episodes": episodes, "new_episodes": episodes - done, "wall_s": time.perf_counter() - t0,
            "out": str(out), "teacher": teacher}


def behaviour_clone(policy: Any, setting: LotSizingSetting, demos: dict[str, np.ndarray], *, epochs: int = 30,
                    batch: int = 256, lr: float = 1e-3, seed: int = 0, val: Any = None,
                    eval_every: int = 2, switch_weight: float = 1.0) -> tuple[dict[str, Any], list[dict]]:
    """Fit the actor of ``policy`` to the demonstrated choices (cross-entropy per machine).

    ``switch_weight`` weighs the choices that change a machine's setup (a few % of them, and the ones a
    missed decision costs most on) against those that keep it. Keeps the weights with the lowest validation
    cost (greedy rollouts on ``val``; within 0.1 % it takes the later epoch); returns (metrics, curve).
    """
    import torch

    from opsrl.lotsizing.train import rollout_cost

    torch.manual_seed(seed)
    x = torch.from_numpy(features(setting, demos["inventory"].reshape(-1, setting.n_items),
                                  demos["setup"].reshape(-1, setting.n_machines)))
    a = torch.from_numpy(demos["actions"].reshape(-1, setting.n_machines).astype(np.int64))
    keeps = torch.from_numpy(demos["setup"].reshape(-1, setting.n_machines)) == a
    weight = torch.where(keeps, 1.0, float(switch_weight))
    opt = torch.optim.Adam(policy.actor.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    best, lowest = (float("inf"), None, 0), float("inf")
    curve = []
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        policy.train()
        total, hits = 0.0, 0.0
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            dist = policy.distribution(x[idx])
            loss = -(weight[idx] * dist.log_prob(a[idx])).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            hits += float((dist.probs.argmax(-1) == a[idx]).float().mean(-1).sum())
        row = {"epoch": epoch, "loss": total / len(x), "choice_accuracy": hits / len(x), "val_cost": float("nan"),
               "wall_s": time.perf_counter() - t0}
        if val is not None and (epoch % eval_every == 0 or epoch == epochs):
            policy.eval()
            row["val_cost"] = rollout_cost(policy, setting, val)
            lowest = min(lowest, row["val_cost"])
            if row["val_cost"] <= lowest * (1 + 1e-3):  # within 0.1 % of the lowest is a tie: the later, closer fit wins
                best = (row["val_cost"], {k: v.detach().clone() for k, v in policy.state_dict().items()}, epoch)
        curve.append(row)
    if best[1] is not None:
        policy.load_state_dict(best[1])
    policy.eval()
    return {"best_val_cost": best[0], "best_epoch": best[2], "samples": len(x), "final_loss": curve[-1]["loss"],
            "final_choice_accuracy": curve[-1]["choice_accuracy"]}, curve
