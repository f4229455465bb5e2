"""HDPO training: roll the policy through the differentiable simulator over sampled demand paths and
minimise the mean cost per period per store with Adam, backpropagating through the whole horizon.

Early stopping on the dev scenarios (integer orders where demand is discrete, as at test), a
learning-curve CSV beside the checkpoint, CPU or CUDA, and a rich progress bar on stderr.

Data parallel (``opsrl train --nproc N`` or ``torchrun``): every process draws the same global batch
of training scenarios each step and rolls its share through the simulator under
DistributedDataParallel, the loss scaled so that the averaged gradient is the gradient of the global
batch's mean cost. Rank 0 runs the dev checks, shows the progress bar and writes the curve and the
checkpoint; its stop decisions and its clock (for a time budget) are shared, so all stop together.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsrl.core import distributed
from opsrl.core.errors import UsageError
from opsrl.core.registry import coerce
from opsrl.inventory.problem import BUILTINS, InventoryInstance, build, load_setting


@dataclass
class HDPOConfig:
    """Training schedule: Adam with a learning rate decayed linearly to lr_end, dev checks, patience."""

    steps: int = 1500
    batch: int = 1024
    lr: float = 3e-3
    lr_end: float = 1e-4
    eval_every: int = 50
    patience: int = 8  # dev checks without improvement before stopping
    train_scenarios: int | None = None  # None: the setting's own
    time_budget: float | None = None  # seconds


def setting_from(name_or_path: str | None, sets: dict[str, str]) -> tuple[InventoryInstance, dict[str, str]]:
    """The instance named by ``--setting`` with the setting's own ``--set`` overrides; the rest are training options."""
    from opsrl.inventory.problem import INVENTORY

    if not name_or_path:
        raise UsageError(f"--setting: training inventory needs a setting name ({', '.join(BUILTINS)}) or a .yaml/.json file")
    path = Path(name_or_path)
    inst = load_setting(path) if path.suffix in (".yaml", ".yml", ".json") else build(name_or_path)
    rest = {}
    for key, value in sets.items():
        if key in TRAIN_SETS:
            rest[key] = value
        else:
            inst = INVENTORY.override(inst, key, value)
    return inst, rest


TRAIN_SETS = ("hidden", "layers", "rounds", "eval_every", "patience", "train_scenarios", "lr_end", "time_budget")


def dev_reference(inst: InventoryInstance) -> tuple[float | None, str]:
    """What dev costs are compared with, on the same dev scenarios where a reference policy exists: the
    optimal (DP) policy for one store with lost sales and Poisson demand, Clark-Scarf echelon stock for a
    backlogged chain (optimal there); else the instance's reference value (another sample's figure)."""
    from opsrl.inventory.simulator import Network, run_policy
    from opsrl.inventory.solvers import base_stock_policy, clark_scarf_levels, dp_applies, dp_policy, serial_chain

    if dp_applies(inst):
        cost, _ = run_policy(inst, dp_policy(inst, Network(inst)), "dev", record=False)
        return cost, "DP optimum on the dev scenarios"
    if not inst.lost_sales:
        try:
            serial_chain(inst)
        except UsageError:  # not a single chain
            pass
        else:
            policy = base_stock_policy(Network(inst), clark_scarf_levels(inst))
            cost, _ = run_policy(inst, policy, "dev", record=False)
            return cost, "Clark-Scarf echelon stock on the dev scenarios"
    if inst.reference is not None:
        return inst.reference.value, inst.reference.source
    return None, ""


def train(inst: InventoryInstance, policy_kind: str = "mlp", config: HDPOConfig | None = None, *,
          device: str = "cpu", seed: int = 0, progress: bool = False, hidden: int = 64, layers: int = 2,
          rounds: int = 2, curve: Path | None = None, init: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train a policy on ``inst`` by HDPO; returns (the best-on-dev policy, metrics). ``init``: a state dict
    of the same architecture to start from (a warm start: fresh optimiser and schedule).

    In a process group (WORLD_SIZE > 1: ``opsrl train --nproc N``, torchrun) each process rolls its
    share of every global batch of ``config.batch`` scenarios; rank 0's policy and metrics are the
    run's (the other ranks return their last weights and no dev figures).
    """
    import torch

    from opsrl.inventory.policy import PolicyConfig, make_policy
    from opsrl.inventory.problem import scenarios
    from opsrl.inventory.simulator import Network, run_policy, set_threads

    cfg = config or HDPOConfig()
    set_threads()
    ctx = distributed.context(device)
    torch.manual_seed(seed)
    net = Network(inst, ctx.device)
    pconf = PolicyConfig(kind=policy_kind, hidden=hidden, layers=layers, rounds=rounds)
    policy = make_policy(pconf, net)
    if init is not None:
        policy.load_state_dict(init)
    model = distributed.wrap(policy, ctx)  # DDP with several processes; checkpoints use policy
    train_d = torch.as_tensor(scenarios(inst, "train", cfg.train_scenarios), device=net.device)
    n_train = train_d.shape[0]
    batch = min(cfg.batch, n_train)
    if batch < ctx.world:
        raise UsageError(f"--batch {batch}: fewer scenarios per step than processes ({ctx.world}); "
                         "each process needs at least one")
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ref, ref_source = dev_reference(inst) if ctx.is_main else (None, "")
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    bar = _progress(progress and ctx.is_main, cfg.steps)
    done, loss, checked = 0, math.nan, 0
    track = {"best": math.inf, "state": None, "step": 0, "stale": 0, "t1": None}

    def check(step: int, train_loss: float) -> bool:
        """Dev cost now (rank 0); keeps the best weights; True (in every process) when patience has run out."""
        nonlocal checked
        checked = step
        if not ctx.is_main:
            return distributed.all_sum(0.0, ctx) > 0
        policy.eval()
        dev, _ = run_policy(inst, policy.as_fn(net), "dev", device=str(net.device), record=False)
        elapsed = time.perf_counter() - t0
        gap = 100.0 * (dev - ref) / ref if ref else math.nan
        if ref and track["t1"] is None and gap <= 1.0:
            track["t1"] = elapsed
        rows.append({"step": step, "wall_s": round(elapsed, 3), "train_loss": train_loss, "dev_cost": dev,
                     "dev_gap_pct": gap})
        if dev < track["best"] - 1e-9:
            track.update(best=dev, step=step, stale=0,
                         state={k: v.detach().clone() for k, v in policy.state_dict().items()})
        else:
            track["stale"] += 1
        return distributed.all_sum(float(track["stale"] >= cfg.patience), ctx) > 0

    for step in range(1, cfg.steps + 1):
        # progress through the schedule: by steps, or by time when a time budget is set (then it ends early);
        # with several processes rank 0's clock decides for all
        frac = (step - 1) / cfg.steps
        if cfg.time_budget:
            elapsed = time.perf_counter() - t0
            if ctx.distributed:
                elapsed = distributed.all_sum(elapsed if ctx.is_main else 0.0, ctx)
            frac = max(frac, elapsed / cfg.time_budget)
        if frac >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (1.0 - (1.0 - cfg.lr_end / cfg.lr) * frac)
        model.train()
        loss = hdpo_step(model, net, train_d, torch.randperm(n_train, generator=gen)[:batch], opt, ctx)
        if bar is not None:
            bar[0].update(bar[1], advance=1, description=f"hdpo {policy_kind} loss {loss:.4f}")
        done = step
        if step % cfg.eval_every == 0 or step == cfg.steps:
            if check(step, loss):
                break
    if done and checked != done:
        check(done, loss)
    if bar is not None:
        bar[0].stop()
    best, best_step, time_to_1pct = track["best"], track["step"], track["t1"]
    if track["state"] is not None:
        policy.load_state_dict(track["state"])
    policy.eval()
    wall = time.perf_counter() - t0
    if curve is not None and ctx.is_main:
        curve.parent.mkdir(parents=True, exist_ok=True)
        with open(curve, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["step", "wall_s", "train_loss", "dev_cost", "dev_gap_pct"])
            writer.writeheader()
            writer.writerows(rows)
    metrics = {"best_dev_cost": best, "best_step": best_step, "steps": done, "wall_s": wall,
               "dev_reference": ref, "dev_reference_source": ref_source, "best_dev_gap_pct": 100.0 * (best - ref) / ref if ref else None,
               "time_to_1pct_dev_gap_s": time_to_1pct, "train_scenarios": n_train, "batch": batch,
               "parameters": policy.num_parameters(), "device": str(net.device), "processes": ctx.world}
    return policy, metrics


def hdpo_step(model: Any, net: Any, demand: Any, rows: Any, optimizer: Any,
              ctx: distributed.Context | None = None) -> float:
    """One Adam step on the training scenarios ``rows`` of ``demand`` (the global batch): the mean cost per
    period per store over the global batch.

    Each process of ``ctx`` rolls its share of the rows through the simulator with ``model`` (the
    policy, wrapped by ``distributed.wrap``); the summed cost is scaled so that DDP's averaged gradient
    is the gradient of the global batch's mean cost.
    """
    from opsrl.inventory.simulator import rollout

    ctx = ctx or distributed.Context(device=str(net.device))
    mine = distributed.shard(rows, ctx).to(net.device)
    costs, _ = rollout(net, lambda s, t: model(net, s), demand[mine])
    count = len(rows) * costs.shape[1]
    total = costs.sum()
    optimizer.zero_grad(set_to_none=True)
    (total * (ctx.world / count)).backward()
    optimizer.step()
    return distributed.all_sum(float(total.detach()), ctx) / count


def _progress(show: bool, total: int) -> Any:
    if not show:
        return None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task("hdpo", total=total)
    bar.start()
    return bar, task


def save_policy(policy: Any, inst: InventoryInstance, metrics: dict[str, Any], out: Path,
                recipe: list[str], training: dict[str, Any]) -> Path:
    """Write a policy checkpoint with its setting, architecture, metrics and the command that made it."""
    from opsrl.core.checkpoint import save_checkpoint
    from opsrl.inventory.policy import config_dict

    meta = {"kind": "hdpo", "problem": "inventory", "architecture": config_dict(policy.config),
            "setting": inst.to_dict(), "metrics": metrics, "reproduce": recipe, "training": training}
    return save_checkpoint(out, policy.state_dict(), meta)


def train_from_options(options: Any) -> dict[str, Any]:
    """``opsrl train --problem inventory --setting S --policy mlp|symmetric|gnn --out CKPT``.

    Run in every process of a group (``opsrl train --nproc N`` launches them; torchrun too), it trains
    data-parallel; rank 0 writes the checkpoint and the curve, and its metrics are the run's."""
    options.reject("setting", "policy", "steps", "max_steps", "batch", "lr", "sets", "nproc", "resume")
    inst, extra = setting_from(options.setting, dict(options.sets))
    init, resumed = None, None
    if options.resume is not None:  # a warm start from that checkpoint's weights and architecture
        from opsrl.inventory.policy import load_policy

        start, meta, resumed = load_policy(inst, options.resume)
        held = meta["architecture"]
        if options.policy not in (None, held["kind"]):
            raise UsageError(f"--policy {options.policy}: --resume {options.resume} holds a {held['kind']} policy")
        if clash := sorted(k for k in ("hidden", "layers", "rounds") if k in extra and int(extra[k]) != held[k]):
            raise UsageError(f"--set {clash[0]}={extra[clash[0]]}: --resume {options.resume} has {clash[0]}={held[clash[0]]}")
        init = start.state_dict()
        extra = {**{k: str(held[k]) for k in ("hidden", "layers", "rounds")}, **extra}
    kind = options.policy or (held["kind"] if init is not None else "mlp")
    from opsrl.inventory.policy import KINDS

    if kind not in KINDS:
        raise UsageError(f"--policy {kind}: expected one of {', '.join(KINDS)}")
    steps = options.max_steps or options.steps or HDPOConfig.steps
    for name, value in (("--steps", steps), ("--batch", options.batch)):
        if value is not None and value < 1:
            raise UsageError(f"{name} {value}: expected a positive integer")
    if options.lr is not None and not options.lr > 0:
        raise UsageError(f"--lr {options.lr}: expected a positive number")
    cfg = HDPOConfig(steps=steps, batch=options.batch or HDPOConfig.batch, lr=options.lr or HDPOConfig.lr)
    arch = {"hidden": 64, "layers": 2, "rounds": 2}
    for key, value in extra.items():
        if key in arch:
            arch[key] = int(coerce(value, 0, f"--set {key}"))
        else:
            default = getattr(cfg, key)
            setattr(cfg, key, coerce(value, default if default is not None else 0.0 if key == "time_budget" else 0,
                                     f"--set {key}"))
    from opsrl.core.device import choose_device

    ctx = distributed.context(choose_device(options.device))
    out = Path(options.out)
    curve = out.with_suffix(".curve.csv")
    policy, metrics = train(inst, kind, cfg, device=ctx.device, seed=options.seed, progress=options.progress,
                            curve=curve, init=init, **arch)
    if not ctx.is_main:  # rank 0 writes
        return metrics
    sets = " ".join(f"--set {k}={v}" for k, v in options.sets.items())
    nproc = f"--nproc {ctx.world}" if ctx.distributed else ""
    recipe = [" ".join(f"opsrl train --problem inventory --setting {options.setting} --policy {kind} "
                       f"--steps {cfg.steps} --batch {cfg.batch} --lr {cfg.lr} --seed {options.seed} {sets} {nproc} "
                       f"{'--resume ' + resumed.name if resumed else ''} --out {out.name}".split())]
    if resumed is not None:  # the run that made the starting weights comes first
        recipe = list(meta.get("reproduce", [])) + recipe
    path = save_policy(policy, inst, metrics, out, recipe,
                       {"steps": cfg.steps, "batch": cfg.batch, "lr": cfg.lr, "lr_end": cfg.lr_end,
                        "eval_every": cfg.eval_every, "patience": cfg.patience, "seed": options.seed,
                        "instance": inst.name, "curve": curve.name, "processes": ctx.world,
                        "resumed_from": resumed.name if resumed else None})
    return {**metrics, "checkpoint": str(path), "curve": str(curve)}
