"""TS-DDR training: roll the decision rule through the stage LPs and push the cost gradient back
through the targets with the LP duals (a custom autograd Function; no finite differences).

``algo="stage"`` (default) solves one stage LP per stage and sample: the gradient of a stage's
objective in its target is the target row's dual, in its start volume the water-balance dual; the
volume reached follows the target when the target is met and the start volume otherwise.
``algo="de"`` solves one deterministic-equivalent LP over all stages per sample with every stage's
target, and uses the target duals only. Entry point for ``opsrl train --problem hydro``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.core.registry import coerce
from opsrl.hydro.lp import DispatchLP
from opsrl.hydro.policy import PolicyConfig, TargetPolicy
from opsrl.hydro.problem import HYDRO, HydroInstance, sample_paths


class StageLayer(torch.autograd.Function):
    """Solve the stage LP for each sample: (v_in, target) -> (objective, v_out), gradients from duals."""

    @staticmethod
    def forward(ctx, v_in, target, lp: DispatchLP, w: np.ndarray, out: dict):
        vi, tg = v_in.detach().cpu().numpy(), target.detach().cpu().numpy()
        n, h = vi.shape
        obj, vout = np.zeros(n), np.zeros((n, h))
        lam, mu, met = np.zeros((n, h)), np.zeros((n, h)), np.zeros((n, h))
        for b in range(n):
            lp.set_state(vi[b])
            lp.set_inflows(w[b])
            lp.set_targets(tg[b])
            r = lp.solve()
            obj[b], vout[b] = r.objective, r.v[0]
            lam[b], mu[b] = r.dual_balance[0], r.dual_target[0]
            met[b] = r.slack[0] <= 1e-7 * (1.0 + lp.system.vmax)
            out.setdefault("cost", []).append(r.cost[0])
            for key in ("q", "s", "g", "d"):
                out.setdefault(key, []).append(getattr(r, key)[0])
        as_t = lambda a: torch.as_tensor(a, dtype=v_in.dtype, device=v_in.device)  # noqa: E731
        ctx.save_for_backward(as_t(lam), as_t(mu), as_t(met))
        return as_t(obj), as_t(vout)

    @staticmethod
    def backward(ctx, g_obj, g_v):
        lam, mu, met = ctx.saved_tensors
        g_in = g_obj[:, None] * lam + g_v * (1 - met)
        g_target = g_obj[:, None] * mu + g_v * met
        return g_in, g_target, None, None, None


class DELayer(torch.autograd.Function):
    """One deterministic-equivalent LP per sample over all stages: targets (B, T, H) -> objective (B,)."""

    @staticmethod
    def forward(ctx, targets, lp: DispatchLP, w: np.ndarray, costs: list):
        tg = targets.detach().cpu().numpy()
        obj, mu = np.zeros(len(tg)), np.zeros_like(tg)
        for b in range(len(tg)):
            lp.set_inflows(w[b])
            lp.set_targets(tg[b])
            r = lp.solve()
            obj[b], mu[b] = r.objective, r.dual_target
            costs.append(r.cost.sum())
        ctx.save_for_backward(torch.as_tensor(mu, dtype=targets.dtype, device=targets.device))
        return torch.as_tensor(obj, dtype=targets.dtype, device=targets.device)

    @staticmethod
    def backward(ctx, g_obj):
        (mu,) = ctx.saved_tensors
        return g_obj[:, None, None] * mu, None, None, None


class Adam:
    """Plain Adam (torch.optim's first use imports torch._dynamo, seconds of start-up on a busy CPU)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.b1, self.b2, self.eps, self.k = lr, betas[0], betas[1], eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.k += 1
        c1, c2 = 1 - self.b1 ** self.k, 1 - self.b2 ** self.k
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(self.b1).add_(p.grad, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(p.grad, p.grad, value=1 - self.b2)
            p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)


def rollout(policy: TargetPolicy, lp: DispatchLP, paths: np.ndarray, stages: int) -> tuple[torch.Tensor, dict]:
    """Run the policy and the stage LP along ``paths`` (B, >=stages, H); total objective per path (B,)
    (differentiable) and the decisions taken."""
    s = lp.system
    dev = policy.vmin.device
    n = len(paths)
    v = torch.as_tensor(np.tile(s.v0, (n, 1)), dtype=torch.float64, device=dev)
    state = policy.initial_state(n)
    total = torch.zeros(n, dtype=torch.float64, device=dev)
    per_t: list[dict] = []
    for t in range(stages):
        w = paths[:, t]
        target, state = policy(t, torch.as_tensor(w, dtype=torch.float64, device=dev), v, state)
        out: dict = {}
        obj, v = StageLayer.apply(v, target, lp, w, out)
        total = total + obj
        per_t.append(out)
    dec = {k: np.stack([np.array(o[k]) for o in per_t], axis=1) for k in ("q", "s", "g", "d", "cost")}
    return total, dec


def simulate_policy(policy: TargetPolicy, inst: HydroInstance, paths: np.ndarray, stages: int,
                    chunk: int = 64) -> dict[str, np.ndarray]:
    """The decisions of the rule on ``paths`` over ``stages`` (no gradients)."""
    torch.set_num_threads(1)
    lp = DispatchLP(inst.system, targets=True)
    parts = []
    with torch.no_grad():
        for i in range(0, len(paths), chunk):
            parts.append(rollout(policy, lp, paths[i:i + chunk], stages)[1])
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def de_loss(policy: TargetPolicy, lp: DispatchLP, paths: np.ndarray, stages: int, costs: list) -> torch.Tensor:
    """Deterministic-equivalent variant: targets from the rule fed its own previous targets as storage."""
    s = lp.system
    dev = policy.vmin.device
    n = len(paths)
    v = torch.as_tensor(np.tile(s.v0, (n, 1)), dtype=torch.float64, device=dev)
    state = policy.initial_state(n)
    targets = []
    for t in range(stages):
        v, state = policy(t, torch.as_tensor(paths[:, t], dtype=torch.float64, device=dev), v, state)
        targets.append(v)
    return DELayer.apply(torch.stack(targets, dim=1), lp, paths[:, :stages], costs)


def train(inst: HydroInstance, *, iters: int = 200, batch: int = 4, lr: float = 1e-2, hidden: int = 64,
          kind: str = "lstm", algo: str = "stage", seed: int = 0, device: str = "cpu",
          time_limit: float = math.inf, val_paths: int = 32, eval_every: int = 10, progress: bool = False,
          log_path: Path | None = None, on_best=None, init: dict | None = None) -> tuple[TargetPolicy, dict]:
    """Train a TS-DDR rule on ``inst``'s system over ``inst.stages`` stages; returns the best rule (by the
    mean real cost of the reported stages on fixed validation paths) and metrics with the learning curve."""
    if algo not in ("stage", "de"):
        raise UsageError(f"--algo {algo}: expected stage or de")
    torch.manual_seed(seed)
    if device == "cpu":
        torch.set_num_threads(1)  # tiny tensors: more threads only spin on a shared CPU
    rng = np.random.default_rng(seed + 1)
    s = inst.system
    period = len(s.inflow_support) if len(s.inflow_support) > 1 else 52
    policy = TargetPolicy(PolicyConfig(s.n_hydro, hidden, kind, period), s).to(device)
    if init is not None:
        policy.load_state_dict(init)
    opt = Adam(policy.parameters(), lr=lr)
    stage_lp = DispatchLP(s, targets=True)
    de_lp = None
    if algo == "de":
        de_lp = DispatchLP(s, inst.stages, targets=True)
        de_lp.set_state(s.v0)
    val = sample_paths(s, inst.stages, val_paths, np.random.default_rng(seed + 7))
    curve: list[dict] = []
    best, best_state = math.inf, None
    start = time.perf_counter()

    def validate(it: int) -> None:
        nonlocal best, best_state
        with torch.no_grad():
            _, dec = rollout(policy, stage_lp, val, inst.report)
        cost = float(dec["cost"].sum(axis=1).mean())
        curve[-1]["val_cost"] = cost if curve else None
        if cost < best:
            best, best_state = cost, {k: v.detach().clone() for k, v in policy.state_dict().items()}
            if on_best is not None:
                on_best(policy, it, cost)

    from opsrl.routing.train import _progress_bar

    with _progress_bar(progress) as bar:
        task = bar.add_task("TS-DDR", total=iters)
        for it in range(1, iters + 1):
            paths = sample_paths(s, inst.stages, batch, rng)
            opt.zero_grad()
            if algo == "stage":
                total, dec = rollout(policy, stage_lp, paths, inst.stages)
                real = float(dec["cost"][:, :inst.report].sum(axis=1).mean())
            else:
                costs: list = []
                total = de_loss(policy, de_lp, paths, inst.stages, costs)
                real = float(np.mean(costs))
            loss = total.mean() / inst.stages
            loss.backward()
            _clip(policy.parameters(), 1.0)
            opt.step()
            curve.append({"iter": it, "objective": float(total.detach().mean()), "train_cost": real,
                          "time_s": time.perf_counter() - start})
            if it % eval_every == 0 or it == iters:
                validate(it)
            if log_path is not None:
                with open(log_path, "a") as f:
                    f.write(json.dumps(curve[-1]) + "\n")
            bar.update(task, advance=1, description=f"TS-DDR it {it} cost {real:,.0f} best val {best:,.0f}")
            if time.perf_counter() - start >= time_limit:
                if "val_cost" not in curve[-1]:
                    validate(it)
                break
    if best_state is not None:
        policy.load_state_dict(best_state)
    metrics = {"iterations": len(curve), "train_s": time.perf_counter() - start, "best_val_cost": best,
               "lp_solves": len(curve) * batch * (inst.stages if algo == "stage" else 1),
               "curve": curve, "algo": algo, "batch": batch, "lr": lr}
    return policy, metrics


def _clip(params, max_norm: float) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)


# ---------------------------------------------------------------- checkpoints and the CLI


def shipped_checkpoint(name: str) -> Path:
    """Where the shipped TS-DDR checkpoint for built-in system ``name`` lives (it may not exist)."""
    from opsrl.weights import shipped

    return shipped(f"hydro_{name}")


def save(policy: TargetPolicy, path: Path, inst: HydroInstance, metrics: dict, recipe: str) -> Path:
    from opsrl.core.checkpoint import save_checkpoint

    meta = {"problem": "hydro", "architecture": policy.config.to_dict(), "system": inst.system.name,
            "fingerprint": inst.system.fingerprint(), "instance": inst.name, "stages": inst.stages,
            "report": inst.report, "recipe": recipe,
            "metrics": {k: v for k, v in metrics.items() if k != "curve"}}
    return save_checkpoint(path, policy.state_dict(), meta)


def load_policy(path: Path, inst: HydroInstance | None = None) -> tuple[TargetPolicy, dict]:
    """A rule from a checkpoint; with ``inst``, its system must be the one it was trained on."""
    from opsrl.core.checkpoint import load_checkpoint

    state, meta = load_checkpoint(path)
    if meta.get("problem") != "hydro":
        raise OpsrlError(f"{path}: a checkpoint for {meta.get('problem')!r}, not hydro")
    if inst is not None and meta.get("fingerprint") != inst.system.fingerprint():
        raise OpsrlError(f"{path}: trained on system {meta.get('system')!r}, not this one ({inst.system.name}; "
                         "a --set of k, load_scale or network changes the system)")
    policy = TargetPolicy(PolicyConfig(**meta["architecture"]))
    policy.load_state_dict(state)
    policy.eval()
    return policy, meta


def policy_for(inst: HydroInstance, checkpoint: str, seed: int, train_iters: int,
               budget: float, device: str = "cpu") -> tuple[TargetPolicy, dict]:
    """The given checkpoint, else the shipped one for this system, else a rule trained here."""
    if checkpoint:
        policy, meta = load_policy(Path(checkpoint), inst)
        return policy.to(device), {"checkpoint": checkpoint, "train_s_recorded": meta["metrics"].get("train_s")}
    shipped = shipped_checkpoint(inst.name.split("-")[0])
    if shipped.is_file():
        _, meta = _peek(shipped)
        if meta.get("fingerprint") == inst.system.fingerprint():
            policy, meta = load_policy(shipped, inst)
            return policy.to(device), {"checkpoint": shipped.name, "train_s_recorded": meta["metrics"].get("train_s"),
                            "train_iters_recorded": meta["metrics"].get("iterations")}
    policy, metrics = train(inst, iters=train_iters or 10 ** 6, seed=seed, time_limit=budget, device=device)
    policy.eval()
    return policy, {"checkpoint": None, "trained_here_s": metrics["train_s"], "train_iters": metrics["iterations"]}


def _peek(path: Path) -> tuple[None, dict]:
    side = path.with_suffix(".json")
    return None, (json.loads(side.read_text()) if side.is_file() else {})


def setting_instance(setting: str | None, sets: dict[str, str]) -> HydroInstance:
    """The training system: a built-in name (default synthetic) or a case folder / JSON file, then --set."""
    name = setting or "synthetic"
    inst = HYDRO.builtin(name)
    if inst is None:
        path = Path(name)
        if not path.exists():
            raise UsageError(f"--setting {name}: expected case3, bolivia, synthetic, a case folder or a .json file")
        inst = HYDRO.load(path)[0]
    for key, value in sets.items():
        inst = HYDRO.override(inst, key, value)
    return inst


def train_from_options(options) -> dict[str, Any]:
    """``opsrl train --problem hydro [--setting NAME] [--algo stage|de] [--policy lstm|mlp] [--steps N]
    [--batch B] [--lr LR] [--set stages=N ...] [--set train_time=SECONDS] [--set hidden=H] [--resume CKPT]``."""
    from opsrl.core.device import choose_device

    options.reject("setting", "algo", "policy", "steps", "batch", "lr", "sets", "resume")
    sets = dict(options.sets)
    train_time = coerce(sets.pop("train_time", "inf"), 1.0, "--set train_time")
    hidden = coerce(sets.pop("hidden", "64"), 1, "--set hidden")
    inst = setting_instance(options.setting, sets)
    device = choose_device(options.device)
    init = None
    if options.resume is not None:
        policy, meta = load_policy(options.resume, inst)
        init = policy.state_dict()
    recipe = "opsrl train --problem hydro " + " ".join(
        f"{flag} {val}" for flag, val in (("--setting", options.setting), ("--algo", options.algo),
                                          ("--policy", options.policy), ("--steps", options.steps),
                                          ("--batch", options.batch), ("--lr", options.lr)) if val is not None)
    recipe += "".join(f" --set {k}={v}" for k, v in options.sets.items()) + f" --seed {options.seed}"
    out = Path(options.out).with_suffix(".safetensors")
    log_path = out.with_suffix(".curve.jsonl")
    log_path.unlink(missing_ok=True)
    box: dict = {}

    def on_best(policy, it, cost):  # checkpoint every improvement, so a stopped run keeps its best
        save(policy, out, inst, {"iterations": it, "best_val_cost": cost, "partial": True}, recipe)
        box["it"] = it

    policy, metrics = train(inst, iters=options.steps or 200, batch=options.batch or 4, lr=options.lr or 1e-2,
                            kind=options.policy or "lstm", algo=options.algo or "stage", seed=options.seed,
                            hidden=hidden, device=device, time_limit=float(train_time),
                            progress=options.progress, log_path=log_path, on_best=on_best, init=init)
    metrics["device"] = device
    path = save(policy, out, inst, metrics, recipe)
    return {"checkpoint": str(path), "learning_curve": str(log_path),
            **{k: v for k, v in metrics.items() if k != "curve"}}
