"""PPO and PDPPO for lot sizing: one implementation, PDPPO adds a critic on the post-decision state.

Rollouts are whole episodes of a batch of environments (Monte Carlo returns, gamma 0.9 as in the
paper). PPO's advantage is G - V(s). PDPPO's is max(G - V(s), G_x - V_x(s_x)), with V_x a second critic
on the post-decision state trained on the return G_x. By default (``post_return="full"``) G_x is G, the
whole return, as in one version of the authors' code; ``post_return="setup"`` follows another version
of their code, where G_x is the discounted sum of the deterministic part of each period's cost only (the
setup costs the decision pays before demand). The paper leaves G_x open; the "setup" target learns more
slowly (docs/lotsizing.md). The actor and each critic have their own Adam optimiser. Everything else is
shared, so the comparison is fair.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import UsageError
from opsrl.lotsizing.env import BatchEnv, features, run_policy
from opsrl.lotsizing.problem import LotSizing, LotSizingSetting, make_scenarios, simulate

ALGOS = ("pdppo", "ppo")
POST_RETURNS = ("setup", "full")
RATIOS = ("joint", "machine")
RETURNS = ("scale", "standardise")
POST_CRITICS = ("separate", "min")
REDUCES = ("sum", "mean")


@dataclass(frozen=True)
class PPOConfig:
    """Training hyperparameters (the paper's where it gives them; batch and epochs sized for a CPU)."""

    algo: str = "pdppo"
    steps: int = 40_000
    batch: int = 16  # episodes collected in parallel per update (batch x horizon steps per update)
    epochs: int = 10  # gradient epochs per update (full batch; the paper: 40 on 400 steps: better on the small
    # settings, unstable on 25x15, docs/lotsizing.md)
    lr_actor: float = 5.5e-4
    lr_critic: float = 1e-3
    gamma: float = 0.9
    clip: float = 0.2
    entropy: float = 0.001
    hidden: int = 128  # as the paper
    eval_every: int = 5  # updates between validation runs
    val_scenarios: int = 20
    grad_clip: float = 1.0
    post_return: str = "full"  # PDPPO's post-decision critic target: "full" (G) or "setup" (setup costs only)
    ratio: str = "joint"  # PPO's clipped ratio: of the joint action ("joint") or of each machine's choice ("machine")
    # the authors' code differs in four more details, each an option here (benchmarks/lotsizing.py --recipe authors):
    returns: str = "scale"  # "scale": costs / a scale fixed at the first rollout; "standardise": G to mean 0, sd 1 per update
    adv_norm: bool = True  # standardise the advantages per update (the authors do not)
    post_critic: str = "separate"  # PDPPO: each critic fitted to its return, or "min": min(V, V_x) fitted to G
    entropy_reduce: str = "sum"  # the entropy bonus: summed over machines, or their "mean" (the authors')
    weight_decay: float = 0.0  # Adam's weight decay on every network (the authors': 0.001)
    # beyond the paper: start from another checkpoint's networks (e.g. the actor cloned from the MIP), and
    # let only the critics learn for the first updates so that a good start is not pushed by random values
    init: str = ""
    critic_warmup: int = 0  # updates at the start in which the actor does not step


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Monte Carlo returns (T, B) of per-period rewards (T, B) over whole episodes."""
    returns = np.zeros_like(rewards)
    acc = np.zeros(rewards.shape[1:])
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        returns[t] = acc
    return returns


def standardised(returns: np.ndarray, how: str) -> np.ndarray:
    """The critic targets: returns as they are ("scale"), or standardised over the update's batch as the
    authors do ("standardise"; the scale then changes from update to update)."""
    if how == "scale":
        return returns
    return (returns - returns.mean()) / (returns.std() + 1e-7)


def validation_scenarios(setting: LotSizingSetting, count: int):
    """Scenarios for model selection during training, drawn from a seed distinct from the test scenarios'."""
    return make_scenarios(setting, count, setting.scenario_seed + 100_003)


def rollout_cost(policy: Any, setting: LotSizingSetting, scenarios: Any) -> float:
    """Mean total cost of the greedy policy on ``scenarios``."""
    actions = run_policy(policy, setting, scenarios.inventory, scenarios.setup, scenarios.demand)
    return float(simulate(setting, actions, scenarios.inventory, scenarios.setup, scenarios.demand)["total"].mean())


def progress_bar(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} steps"),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def train(setting: LotSizingSetting, config: PPOConfig, *, seed: int = 0, device: str = "cpu",
          progress: bool = False, curve_path: Path | None = None) -> tuple[Any, dict[str, Any], list[dict]]:
    """Train a policy with PPO or PDPPO; returns (best policy by validation cost, metrics, learning curve)."""
    import torch

    from opsrl.lotsizing.policy import LotSizingPolicy, PolicyConfig

    if config.algo not in ALGOS:
        raise UsageError(f"--algo {config.algo}: expected one of {', '.join(ALGOS)}")
    for key, allowed in (("post_return", POST_RETURNS), ("ratio", RATIOS), ("returns", RETURNS),
                         ("post_critic", POST_CRITICS), ("entropy_reduce", REDUCES)):
        if getattr(config, key) not in allowed:
            raise UsageError(f"--set {key}={getattr(config, key)}: expected one of {', '.join(allowed)}")
    if config.post_critic == "min" and config.post_return != "full":
        raise UsageError("--set post_critic=min fits min(V, V_x) to the full return: it needs post_return=full")
    torch.manual_seed(seed)
    if device == "cpu":
        torch.set_num_threads(1)  # small networks: one thread is fastest on a shared CPU
    rng = np.random.default_rng([seed, 17])
    dual = config.algo == "pdppo"
    policy = LotSizingPolicy(PolicyConfig(setting.n_items, setting.n_machines, config.hidden, dual), setting.mask)
    if config.init:
        load_start(policy, Path(config.init))
    policy.to(device)
    wd = config.weight_decay
    opt_actor = torch.optim.Adam(policy.actor.parameters(), lr=config.lr_actor, weight_decay=wd)
    opt_critic = torch.optim.Adam(policy.critic.parameters(), lr=config.lr_critic, weight_decay=wd)
    opt_post = torch.optim.Adam(policy.critic_post.parameters(), lr=config.lr_critic, weight_decay=wd) if dual else None
    min_critic = dual and config.post_critic == "min"

    def descend(loss: Any, *parts: tuple[Any, Any]) -> None:
        """One gradient step of ``loss`` for each (network, optimiser) pair, the gradient clipped per network."""
        for _, opt in parts:
            opt.zero_grad()
        loss.backward()
        for net, opt in parts:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            opt.step()
    env = BatchEnv(setting, config.batch, rng)
    gen = torch.Generator().manual_seed(seed)
    val = validation_scenarios(setting, config.val_scenarios)
    T, B = setting.horizon, config.batch
    per_update = B * T
    updates = max(1, -(-config.steps // per_update))
    discount = config.gamma ** np.arange(T)
    reward_scale = None
    best = (float("inf"), None, 0)
    if config.init:  # the start is a candidate too: fine-tuning must not end worse than it began
        policy.eval()
        best = (rollout_cost(policy, setting, val), {k: v.detach().clone() for k, v in policy.state_dict().items()}, 0)
    curve: list[dict] = []
    t0 = time.perf_counter()
    bar = progress_bar(progress)
    with bar:
        task = bar.add_task(f"{config.algo} {setting.name}", total=updates * per_update, info="")
        for update in range(1, updates + 1):
            # ---- collect B whole episodes
            env.reset()
            obs = np.zeros((T, B, policy.config.dim_in), np.float32)
            post_obs = np.zeros_like(obs) if dual else None
            acts = np.zeros((T, B, setting.n_machines), np.int64)
            costs = np.zeros((T, B))
            setup_costs = np.zeros((T, B))
            policy.eval()
            with torch.no_grad():
                for t in range(T):
                    x = features(setting, env.inventory, env.setup)
                    obs[t] = x
                    probs = policy.distribution(torch.from_numpy(x).to(device)).probs
                    a = torch.multinomial(probs.reshape(-1, probs.shape[-1]).cpu(), 1, generator=gen)
                    a = a.view(B, setting.n_machines).numpy()
                    acts[t] = a
                    out = env.step(a)
                    if dual:
                        post_obs[t] = features(setting, out["post_inventory"], out["setup"])
                    costs[t] = out["cost"]
                    setup_costs[t] = out["setup_cost"]
            if reward_scale is None:  # fixed from the first rollout: values stay on one scale
                reward_scale = float(max(costs.mean(), 1e-6))
            rewards = -costs / reward_scale
            returns = standardised(discounted_returns(rewards, config.gamma), config.returns)
            # ---- PPO update
            policy.train()
            x = torch.from_numpy(obs.reshape(T * B, -1)).to(device)
            a = torch.from_numpy(acts.reshape(T * B, -1)).to(device)
            g = torch.as_tensor(returns.reshape(-1), dtype=torch.float32, device=device)
            xp = torch.from_numpy(post_obs.reshape(T * B, -1)).to(device) if dual else None
            gx = g  # the post-decision critic's return: G, or the setup costs' own return
            if dual and config.post_return == "setup":
                setup_returns = standardised(discounted_returns(-setup_costs / reward_scale, config.gamma),
                                             config.returns)
                gx = torch.as_tensor(setup_returns.reshape(-1), dtype=torch.float32, device=device)
            per_machine = config.ratio == "machine"  # the authors' code: one clipped ratio per machine

            def ratio_logp(dist: Any) -> Any:
                """Log-probability the clipped ratio is taken of: per machine (B, m), or the joint action's (B,)."""
                logp = dist.log_prob(a)
                return logp if per_machine else logp.sum(-1)

            with torch.no_grad():
                old_logp = ratio_logp(policy.distribution(x))
                adv = g - policy.value(x)
                if dual:  # with gx = G both forms are G - min(V, V_x)
                    adv = torch.maximum(adv, gx - policy.value_post(xp))
                if config.adv_norm:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                if per_machine:
                    adv = adv[:, None]
            for _ in range(config.epochs):
                dist = policy.distribution(x)
                ratio = torch.exp(ratio_logp(dist) - old_logp)
                surr = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - config.clip, 1 + config.clip) * adv)
                entropy = dist.entropy().sum(-1) if config.entropy_reduce == "sum" else dist.entropy().mean(-1)
                loss_actor = -surr.mean() - config.entropy * entropy.mean()
                if update > config.critic_warmup:
                    descend(loss_actor, (policy.actor, opt_actor))
                if min_critic:  # the authors' PDPPO: one loss on the smaller estimate, both critics step
                    loss_critic = loss_post = torch.nn.functional.mse_loss(
                        torch.minimum(policy.value(x), policy.value_post(xp)), g)
                    descend(loss_critic, (policy.critic, opt_critic), (policy.critic_post, opt_post))
                    continue
                loss_critic = torch.nn.functional.mse_loss(policy.value(x), g)
                descend(loss_critic, (policy.critic, opt_critic))
                if dual:
                    loss_post = torch.nn.functional.mse_loss(policy.value_post(xp), gx)
                    descend(loss_post, (policy.critic_post, opt_post))
            steps = update * per_update
            row = {"update": update, "steps": steps, "train_cost": float(costs.sum(0).mean()),
                   "discounted_return": float((rewards * discount[:, None]).sum(0).mean()),
                   "loss_actor": float(loss_actor.detach()), "loss_critic": float(loss_critic.detach()),
                   "loss_post": float(loss_post.detach()) if dual else float("nan"), "val_cost": float("nan"),
                   "wall_s": time.perf_counter() - t0}
            if update % config.eval_every == 0 or update == updates:
                policy.eval()
                row["val_cost"] = rollout_cost(policy, setting, val)
                if row["val_cost"] < best[0]:
                    best = (row["val_cost"], {k: v.detach().clone() for k, v in policy.state_dict().items()}, steps)
            curve.append(row)
            if curve_path is not None:
                _write_curve(curve_path, curve)
            bar.update(task, completed=steps,
                       info=f"train cost {row['train_cost']:.0f}  best val {best[0]:.0f}")
    policy.load_state_dict(best[1])
    policy.eval()
    wall = time.perf_counter() - t0
    metrics = {"algo": config.algo, "setting": setting.name, "steps": updates * per_update, "updates": updates,
               "best_val_cost": best[0], "best_at_steps": best[2], "final_train_cost": curve[-1]["train_cost"],
               "final_val_cost": curve[-1]["val_cost"], "reward_scale": reward_scale, "wall_s": wall,
               "steps_per_s": updates * per_update / wall}
    return policy, metrics, curve


def load_start(policy: Any, path: Path) -> None:
    """Copy the networks of checkpoint ``path`` that ``policy`` also has (same shapes) into it: the actor of a
    cloned or PPO policy, its critics where it has them."""
    from opsrl.core.checkpoint import load_checkpoint

    if not path.with_suffix(".safetensors").is_file():
        raise UsageError(f"--set init={path}: checkpoint not found")
    state, meta = load_checkpoint(path.with_suffix(".safetensors"))
    own = policy.state_dict()
    if meta.get("problem") != "lotsizing" or any(k in own and own[k].shape != v.shape for k, v in state.items()):
        raise UsageError(f"--set init={path}: not a lotsizing checkpoint of this setting's dimensions")
    policy.load_state_dict({**own, **{k: v for k, v in state.items() if k in own}})


def _write_curve(path: Path, curve: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(curve[0]))
        w.writeheader()
        w.writerows(curve)
    tmp.replace(path)


def resolve_setting(name: str) -> LotSizingSetting:
    """A built-in setting name or a setting JSON file; a bad name is a one-line usage error."""
    from opsrl.lotsizing.problem import BUILTIN_SEEDS

    problem = LotSizing()
    builtin = problem.builtin(name)
    if builtin is not None:
        return builtin
    path = Path(name)
    if path.suffix.lower() == ".json" or path.exists():
        return problem.load(path)[0]
    raise UsageError(f"--setting {name}: expected a built-in setting ({', '.join(BUILTIN_SEEDS)}) or a .json file")


SET_KEYS = {f: type(getattr(PPOConfig(), f)) for f in (
    "hidden", "gamma", "clip", "entropy", "lr_critic", "eval_every", "val_scenarios", "grad_clip", "post_return",
    "ratio", "returns", "adv_norm", "post_critic", "entropy_reduce", "weight_decay", "init", "critic_warmup")}


def train_from_options(options: Any) -> dict[str, Any]:
    """``opsrl train --problem lotsizing --setting S --algo pdppo|ppo --steps N --seed K --out CKPT``."""
    from opsrl.core.checkpoint import save_checkpoint
    from opsrl.core.device import choose_device
    from opsrl.core.registry import coerce
    from opsrl.lotsizing.policy import config_dict

    options.reject("setting", "algo", "steps", "batch", "epochs", "lr", "sets")
    if options.setting is None:
        raise UsageError("--setting: training lotsizing needs a setting (15x5, 20x10, 25x10, 25x15 or a .json file)")
    algo = options.algo or "pdppo"
    if algo == "bc":
        return clone_from_options(options)
    if algo not in ALGOS:
        raise UsageError(f"--algo {algo}: expected one of {', '.join(ALGOS)} or bc")
    config = PPOConfig(algo=algo)
    for key, value in (("steps", options.steps), ("batch", options.batch), ("epochs", options.epochs),
                       ("lr_actor", options.lr)):
        if value is not None:
            if not value > 0:
                raise UsageError(f"--{key.replace('_actor', '')} must be positive, got {value}")
            config = replace(config, **{key: value})
    for key, value in options.sets.items():
        if key not in SET_KEYS:
            raise UsageError(f"--set {key}: lotsizing training has no option {key!r} (options: {', '.join(SET_KEYS)})")
        config = replace(config, **{key: SET_KEYS[key](coerce(value, SET_KEYS[key](0), f"--set {key}"))})
    setting = resolve_setting(options.setting)
    device = choose_device(options.device)
    out = Path(options.out).with_suffix(".safetensors")
    curve_path = out.with_suffix(".curve.csv")
    policy, metrics, _ = train(setting, config, seed=options.seed, device=device, progress=options.progress,
                               curve_path=curve_path)
    command = (f"opsrl train --problem lotsizing --setting {options.setting} --algo {algo} --steps {config.steps} "
               f"--batch {config.batch} --epochs {config.epochs} --seed {options.seed} "
               + "".join(f"--set {k}={v} " for k, v in options.sets.items()) + f"--out {out}")
    meta = {"problem": "lotsizing", "kind": algo, "architecture": config_dict(policy.config),
            "setting": setting.name, "setting_dims": [setting.n_items, setting.n_machines],
            "training": {**asdict(config), "seed": options.seed, "device": device}, "metrics": metrics,
            "learning_curve": curve_path.name, "reproduce": [command]}
    save_checkpoint(out, policy.state_dict(), meta)
    return {**metrics, "checkpoint": str(out), "learning_curve": str(curve_path)}


def clone_from_options(options: Any) -> dict[str, Any]:
    """``opsrl train --problem lotsizing --setting S --algo bc --set demos=FILE[,FILE...] --out CKPT``: the actor
    cloned from rolling-horizon MIP demonstrations (``opsrl lotsizing demos``; several files, e.g. a first
    collection and its DAgger rounds, are pooled), best validation epoch kept."""
    import torch

    from opsrl.core.checkpoint import save_checkpoint
    from opsrl.core.registry import coerce
    from opsrl.lotsizing.imitate import behaviour_clone, load_demonstrations
    from opsrl.lotsizing.policy import LotSizingPolicy, PolicyConfig, config_dict

    sets = dict(options.sets)
    if "demos" not in sets:
        raise UsageError("--algo bc needs --set demos=FILE (make one with opsrl lotsizing demos)")
    unknown = set(sets) - {"demos", "hidden", "switch_weight"}
    if unknown:
        raise UsageError(f"--set {sorted(unknown)[0]}: --algo bc takes only demos, hidden and switch_weight")
    epochs, batch, lr = options.epochs or 30, options.batch or 256, options.lr or 1e-3
    if not (epochs > 0 and batch > 0 and lr > 0):
        raise UsageError("--epochs, --batch and --lr must be positive")
    hidden = coerce(sets.get("hidden", "128"), 0, "--set hidden")
    switch_weight = coerce(sets.get("switch_weight", "5"), 0.0, "--set switch_weight")
    if hidden < 1 or switch_weight <= 0:
        raise UsageError("--set hidden and --set switch_weight must be positive")
    setting = resolve_setting(options.setting)
    parts = [load_demonstrations(Path(f), setting) for f in str(sets["demos"]).split(",") if f]
    demos = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    torch.set_num_threads(1)
    policy = LotSizingPolicy(PolicyConfig(setting.n_items, setting.n_machines, hidden, False), setting.mask)
    out = Path(options.out).with_suffix(".safetensors")
    metrics, curve = behaviour_clone(policy, setting, demos, epochs=epochs, batch=batch, lr=lr, seed=options.seed,
                                     val=validation_scenarios(setting, PPOConfig().val_scenarios),
                                     switch_weight=switch_weight)
    curve_path = out.with_suffix(".curve.csv")
    _write_curve(curve_path, curve)
    metrics = {"algo": "bc", "setting": setting.name, "episodes": int(len(demos["actions"])),
               "switch_weight": switch_weight, **metrics}
    command = (f"opsrl train --problem lotsizing --setting {options.setting} --algo bc --epochs {epochs} "
               f"--batch {batch} --lr {lr:g} --seed {options.seed} "
               + "".join(f"--set {k}={v} " for k, v in sets.items()) + f"--out {out}")
    meta = {"problem": "lotsizing", "kind": "bc", "architecture": config_dict(policy.config), "setting": setting.name,
            "setting_dims": [setting.n_items, setting.n_machines], "metrics": metrics,
            "learning_curve": curve_path.name, "reproduce": [command]}
    save_checkpoint(out, policy.state_dict(), meta)
    return {**metrics, "checkpoint": str(out), "learning_curve": str(curve_path)}
