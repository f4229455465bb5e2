"""Training a BQ policy by imitation of a label file (``opsrl label``), with BQ-NCO's tail sampling.

Each optimiser step draws a batch of labelled instances and one sub-problem size for the whole batch
(kp: one per row), cuts every instance's expert solution there (the suffix of an optimal solution is an optimal solution
of the remaining sub-problem) and minimises the cross-entropy of the expert's next action:

- tsp: ``randint(4, N + 2)`` tokens (origin + remaining + destination), the suffix of the tour;
- cvrp: a random start index into the customer order, with the remaining capacity at that point;
  the label's routes are first re-ordered by leftover capacity, ascending (fullest first), as BQ-NCO
  does; the target is the next customer and whether it starts a new route (via the depot);
- op: a random prefix of the tour is dropped and its length taken off the budget; where the prefix
  is longer than an instance's tour, the whole tour and some unvisited nodes are dropped (dropping
  unvisited nodes keeps the label optimal) and the target is the destination (end the tour);
- kp: a random subset of the packed items is removed (row b removes a uniform 0..P_b - 1 of its P_b
  packed items, rows padded to one width: one count per batch would never train the last decisions
  of the rows that pack many) and the capacity reduced; every packed item still there is a valid
  target (loss = -log of their summed probability).

Adam, learning rate ``lr`` multiplied by ``lr_decay`` every ``decay_every`` epochs after epoch
``lr_epoch`` (BQ-NCO: 0.98 every 50 of 500 epochs; here per epoch by default, since runs are
shorter; a resumed run that restarts the rate sets ``lr_epoch`` to its first epoch). Mixed
precision (bf16, fp16 where bf16 is missing) on CUDA only. After every epoch the validation
instances (the last ``val_count`` of the file) are decoded greedily and their mean gap to the label
objective is recorded. Files: the best checkpoint at ``out`` (safetensors + JSON sidecar), the
last one at ``<out>.last.safetensors`` with the optimiser state at ``<out>.last.pt`` (for
``resume``), and the learning curve at ``<out>.curve.csv``. With ``average_from`` E the run also keeps
the uniform mean of the weights at the end of epochs E, E + ``average_every``, ... (stochastic weight
averaging, torch's ``AveragedModel``) at ``<out>.avg.safetensors``, validated like an epoch: the mean
of the weights along the end of a run usually decodes better than any one epoch's, for no training.

Data parallel (``opsrl train --nproc N`` or ``torchrun``): every process holds the whole label file,
draws the same permutation, augmentation and tail sampling, and runs its share of each global batch
of ``batch`` rows through DistributedDataParallel; the loss is scaled so that the averaged gradient
is the single-process gradient of that batch. Rank 0 validates and writes the files (weights without
``module.`` prefixes: they load anywhere).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from opsrl.core import distributed
from opsrl.core.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from opsrl.core.device import amp_dtype, autocast, precision_name
from opsrl.core.errors import OpsrlError
from opsrl.core.files import atomic_write_text
from opsrl.core.metrics import gap_pct
from opsrl.core.registry import get_problem
from opsrl.core.seeding import seed_everything
from opsrl.routing.bq import SPECS, Spec, Static, SubProblem, gather_rows, static_from_instances
from opsrl.routing.policy import BQPolicy, PolicyConfig

CURVE_COLUMNS = ("epoch", "step", "train_loss", "val_gap_pct", "lr", "seconds")


# ---------------------------------------------------------------- expert trajectories

def prepare_labels(problem: str, static: Static, arrays: dict[str, np.ndarray],
                   rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The label arrays as expert action sequences that tail sampling cuts (CPU tensors, one row per instance)."""
    if problem == "tsp":
        tour = torch.as_tensor(np.asarray(arrays["tour"], dtype=np.int64))
        return {"seq": torch.cat([tour, tour[:, :1]], dim=1)}
    if problem == "cvrp":
        return _cvrp_labels(static, np.asarray(arrays["order"], dtype=np.int64), np.asarray(arrays["via_depot"], bool))
    if problem == "op":
        return _op_labels(static, np.asarray(arrays["tour"], dtype=np.int64), rng)
    return {"packed": torch.as_tensor(np.asarray(arrays["packed"], dtype=bool))}


def reorder_routes(order: np.ndarray, via: np.ndarray, demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's routes sorted by leftover capacity, ascending (ties keep their order); demand is scaled (cap 1)."""
    b, n = order.shape
    route = np.cumsum(via, axis=1) - 1
    load = np.zeros((b, n))
    np.add.at(load, (np.repeat(np.arange(b), n), route.ravel()), np.take_along_axis(demand, order, 1).ravel())
    leftover = 1.0 - np.take_along_axis(load, route, 1)
    rows = np.repeat(np.arange(b)[:, None], n, 1)
    flat = np.lexsort((np.tile(np.arange(n), b), route.ravel(), leftover.ravel(), rows.ravel()))
    perm = flat.reshape(b, n) - np.arange(b)[:, None] * n
    return np.take_along_axis(order, perm, 1), np.take_along_axis(via, perm, 1)


def _cvrp_labels(static: Static, order: np.ndarray, via: np.ndarray) -> dict[str, torch.Tensor]:
    """Re-ordered customer sequence, route starts, and the remaining capacity after each customer."""
    demand = static.demand.cpu().numpy()
    order, via = reorder_routes(order, via, demand)
    d = np.take_along_axis(demand, order, 1)
    cum = np.cumsum(d, axis=1)
    start = np.maximum.accumulate(np.where(via, np.arange(order.shape[1]), 0), axis=1)
    before = np.take_along_axis(cum - d, start, 1)
    return {"seq": torch.as_tensor(order), "via": torch.as_tensor(via),
            "rem_after": torch.as_tensor(1.0 - (cum - before))}


def _op_labels(static: Static, tour: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Tour nodes then the unvisited ones (random order), tour lengths, and the length used after each prefix."""
    b, n = tour.shape
    length = (tour >= 0).sum(1)
    key = n + 1 + rng.random((b, n + 1))  # unvisited nodes after the tour, shuffled
    rows = np.repeat(np.arange(b)[:, None], n, 1)
    key[rows[tour >= 0], tour[tour >= 0]] = np.nonzero(tour >= 0)[1]
    key[:, 0] = np.inf  # the depot is never a token to visit
    seq = np.argsort(key, axis=1)[:, :n]
    prev = np.concatenate([np.zeros((b, 1), np.int64), np.maximum(tour, 0)[:, :-1]], 1)
    legs = _pair_distances(static, torch.as_tensor(prev), torch.as_tensor(np.maximum(tour, 0)))
    legs = torch.where(torch.as_tensor(tour >= 0), legs, 0.0)
    used = torch.cat([torch.zeros(b, 1, dtype=torch.float64), legs.cumsum(1)], 1)
    return {"seq": torch.as_tensor(seq), "length": torch.as_tensor(length), "used": used}


def _pair_distances(static: Static, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Scaled distances between nodes ``a`` (B, S) and ``b`` (B, S), element by element."""
    if static.dist is not None:
        rows = torch.arange(len(a))[:, None]
        return static.dist[rows, a, b]
    return torch.linalg.vector_norm(gather_rows(static.coords, a) - gather_rows(static.coords, b), dim=-1)


# ---------------------------------------------------------------- tail sampling

@dataclass
class Tail:
    """Tail-sampled sub-problems, the expert's next action(s) in them, and padding tokens (kp only)."""

    sub: SubProblem
    targets: torch.Tensor  # (B, T, logits) bool
    pad: torch.Tensor | None = None  # (B, T) bool, True at padding tokens


def tail_subproblems(problem: str, static: Static, labels: dict[str, torch.Tensor], rng: np.random.Generator) -> Tail:
    """Cut every row's expert solution at a random point: one sub-problem size per batch (tsp, cvrp, op),
    a random number of packed items per row for kp (its rows are padded to one width)."""
    return _TAILS[problem](static, labels, rng)


def _flags(b: int, value: bool, device: Any) -> torch.Tensor:
    return torch.full((b,), value, dtype=torch.bool, device=device)


def _ends(first: torch.Tensor, middle: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    return torch.cat([first[:, None], middle, last[:, None]], dim=1)


def _target_at(nodes: torch.Tensor, logits: int, token: torch.Tensor, mode: torch.Tensor | int = 0) -> torch.Tensor:
    targets = torch.zeros((*nodes.shape, logits), dtype=torch.bool, device=nodes.device)
    rows = torch.arange(len(nodes), device=nodes.device)
    targets[rows, token, mode] = True
    return targets


def rotate_tours(seq: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Every row's closed tour (B, N + 1) started at a random city and run in a random direction.

    The cycle and its length are unchanged, so the label stays optimal; its suffixes become paths
    that end anywhere, not only at the city the label file starts from (an N-fold and twofold
    augmentation on top of the dihedral one).
    """
    b, n = seq.shape[0], seq.shape[1] - 1
    shift = torch.as_tensor(rng.integers(0, n, b), device=seq.device)[:, None]
    flip = torch.as_tensor(rng.random(b) < 0.5, device=seq.device)[:, None]
    steps = torch.arange(n, device=seq.device)[None, :]
    index = torch.where(flip, shift - steps, shift + steps) % n
    tour = seq[:, :n].gather(1, index)
    return torch.cat([tour, tour[:, :1]], dim=1)


def _tsp_tail(static: Static, labels: dict[str, torch.Tensor], rng: np.random.Generator) -> Tail:
    seq = rotate_tours(labels["seq"], rng)  # (B, N + 1): the tour and its start again
    b, total = seq.shape
    tokens = int(rng.integers(min(4, total), total + 1))
    nodes = seq[:, total - tokens:]
    sub = SubProblem(nodes, static.start.clone(), _flags(b, False, seq.device))
    return Tail(sub, _target_at(nodes, 1, torch.ones(b, dtype=torch.long, device=seq.device)))


def _cvrp_tail(static: Static, labels: dict[str, torch.Tensor], rng: np.random.Generator) -> Tail:
    seq, via = labels["seq"], labels["via"]
    b, n = seq.shape
    k = int(rng.integers(0, n))
    zero = torch.zeros(b, dtype=torch.long, device=seq.device)
    origin = seq[:, k - 1] if k > 0 else zero
    remaining = labels["rem_after"][:, k - 1] if k > 0 else static.start.clone()
    nodes = _ends(origin, seq[:, k:], zero)
    return Tail(SubProblem(nodes, remaining, _flags(b, k == 0, seq.device)),
                _target_at(nodes, 2, zero + 1, via[:, k].long()))


def _op_tail(static: Static, labels: dict[str, torch.Tensor], rng: np.random.Generator) -> Tail:
    seq, length = labels["seq"], labels["length"]
    b, n = seq.shape
    k = int(rng.integers(0, int(length.max()) + 1))
    cut = length.clamp(max=k)  # tour nodes dropped per row (the rest of the k dropped are unvisited)
    zero = torch.zeros(b, dtype=torch.long, device=seq.device)
    origin = torch.where(cut > 0, seq.gather(1, (cut - 1).clamp(min=0)[:, None]).squeeze(1), zero)
    remaining = static.start - labels["used"].gather(1, cut[:, None]).squeeze(1)
    nodes = _ends(origin, seq[:, k:], zero)
    token = torch.where(length > k, zero + 1, zero + nodes.shape[1] - 1)  # next tour node, or end the tour
    return Tail(SubProblem(nodes, remaining, _flags(b, False, seq.device)), _target_at(nodes, 1, token))


def _kp_tail(static: Static, labels: dict[str, torch.Tensor], rng: np.random.Generator) -> Tail:
    """Row b drops a uniform 0..P_b - 1 of its P_b packed items, so late decisions are trained in every row."""
    packed = labels["packed"]
    b, n = packed.shape
    dev = packed.device
    dropped = (torch.as_tensor(rng.random(b), device=dev) * packed.sum(1)).long()
    noise = torch.as_tensor(rng.random((b, n)), device=dev)
    order = torch.argsort(noise + 2.0 * (~packed), dim=1)  # packed items first, in random order
    slots = dropped[:, None] + torch.arange(n - int(dropped.min()), device=dev)
    pad = slots >= n
    nodes = order.gather(1, slots.clamp(max=n - 1))
    used = torch.cat([torch.zeros(b, 1, dtype=static.weights.dtype, device=dev),
                      gather_rows(static.weights, order).cumsum(1)], 1)
    remaining = static.start - used.gather(1, dropped[:, None]).squeeze(1)
    targets = (packed.gather(1, nodes) & ~pad)[..., None]
    return Tail(SubProblem(nodes, remaining, _flags(b, False, dev)), targets, pad)


_AUGMENTATION = {"tsp": "dihedral, tour rotation and reversal"}  # as the recipe records it
_TAILS = {"tsp": _tsp_tail, "cvrp": _cvrp_tail, "op": _op_tail, "kp": _kp_tail}


# ---------------------------------------------------------------- loss

def _allowed_targets(spec: Spec, static: Static, tail: Tail) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened (B, tokens x logits) masks of the allowed actions and of the allowed expert actions,
    and which rows have at least one expert action (the rows that count in the loss)."""
    mask = spec.mask(static, tail.sub)
    if tail.pad is not None:
        mask = mask & ~tail.pad[..., None]
    mask = mask.flatten(1)
    targets = tail.targets.flatten(1) & mask
    return mask, targets, targets.any(1)


def imitation_loss(policy: BQPolicy, spec: Spec, static: Static, tail: Tail, amp: Any = None) -> torch.Tensor | None:
    """Mean of -log(summed probability of the allowed target actions) over rows that have one; None if none has."""
    mask, targets, keep = _allowed_targets(spec, static, tail)
    if not bool(keep.any()):
        return None
    with autocast(str(static.device), amp):
        logits = policy(spec.features(static, tail.sub), tail.pad)
    logits = logits.float().flatten(1).masked_fill(~mask, -math.inf)[keep]
    log_all = torch.logsumexp(logits, 1)
    log_target = torch.logsumexp(logits.masked_fill(~targets[keep], -math.inf), 1)
    return (log_all - log_target).mean()


def sharded_imitation_loss(model: Any, spec: Spec, static: Static, tail: Tail, rows: torch.Tensor,
                           amp: Any = None) -> tuple[torch.Tensor, int]:
    """The summed imitation loss of rows ``rows`` of a global batch, and how many rows of the whole batch count.

    Dividing the sum by the count gives the share of ``imitation_loss`` over the global batch that
    these rows carry. Rows without an allowed target add exactly 0 (and still run the model, so every
    data-parallel process takes part in every step).
    """
    mask, targets, keep = _allowed_targets(spec, static, tail)
    total = int(keep.sum())
    features = spec.features(static, tail.sub)[rows]
    pad = None if tail.pad is None else tail.pad[rows]
    with autocast(str(static.device), amp):
        logits = model(features, pad)
    mask, targets, keep = mask[rows], targets[rows], keep[rows]
    logits = logits.float().flatten(1).masked_fill(~mask, -math.inf)
    logits = torch.where(keep[:, None], logits, torch.zeros_like(logits))  # rows with no target: loss 0, no NaN
    targets = torch.where(keep[:, None], targets, torch.ones_like(targets))
    per_row = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~targets, -math.inf), 1)
    return torch.where(keep, per_row, torch.zeros_like(per_row)).sum(), total


# ---------------------------------------------------------------- the training run

@dataclass
class _Progress:
    """Where a run stands: counters, best validation gap and the learning curve rows."""

    epoch: int = 0
    step: int = 0
    best: float = math.inf
    best_epoch: int = 0
    last_gap: float = math.nan
    last_loss: float = math.nan
    curve: list[dict[str, Any]] | None = None


def dihedral(static: Static, rng: np.random.Generator) -> Static:
    """Each instance's coordinates under one of the 8 symmetries of the unit square, drawn at random.

    Distances, and so the expert's solution, are unchanged: an eightfold augmentation of the labels
    that costs nothing (problems without coordinates are returned as they are).
    """
    if static.coords is None:
        return static
    k = torch.as_tensor(rng.integers(0, 8, static.coords.shape[0]))[:, None]
    x, y = static.coords[..., 0], static.coords[..., 1]
    x = torch.where((k & 1).bool(), 1 - x, x)
    y = torch.where((k & 2).bool(), 1 - y, y)
    swap = (k & 4).bool()
    coords = torch.stack([torch.where(swap, y, x), torch.where(swap, x, y)], dim=-1)
    return dataclasses.replace(static, coords=coords)


class _Run:
    """The fixed parts of a training run and one epoch of optimiser steps over them."""

    def __init__(self, problem: str, policy: BQPolicy, optimizer: Any, static: Static,
                 labels: dict[str, torch.Tensor], n_train: int, batch: int, device: str,
                 ctx: distributed.Context | None = None, precision: str = "auto"):
        self.problem, self.policy, self.optimizer = problem, policy, optimizer
        self.ctx = ctx or distributed.Context(device=device)
        self.model = distributed.wrap(policy, self.ctx)  # DDP with several processes; checkpoints use policy
        self.static, self.labels, self.n_train, self.batch, self.device = static, labels, n_train, batch, device
        self.spec = SPECS[problem]
        self.amp = amp_dtype(device, precision, training=True)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp is torch.float16)
        self.steps_per_epoch = math.ceil(n_train / batch)

    def step(self, rows: torch.Tensor, rng: np.random.Generator) -> float | None:
        """One optimiser step on the tail-sampled sub-problems of instances ``rows``; its loss."""
        static = dihedral(self.static.take(rows), rng).to(self.device)
        labels = {k: v[rows].to(self.device) for k, v in self.labels.items()}
        if self.ctx.distributed:
            return self._shared_step(static, labels, rng)
        loss = imitation_loss(self.policy, self.spec, static, tail_subproblems(self.problem, static, labels, rng),
                              self.amp)
        if loss is None:
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _shared_step(self, static: Static, labels: dict[str, torch.Tensor], rng: np.random.Generator) -> float | None:
        """This process's share of a global batch's step; the loss is scaled so DDP's average is the batch mean."""
        tail = tail_subproblems(self.problem, static, labels, rng)
        mine = distributed.shard(torch.arange(static.batch, device=self.device), self.ctx)
        loss_sum, total = sharded_imitation_loss(self.model, self.spec, static, tail, mine, self.amp)
        if total == 0:
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss_sum * (self.ctx.world / total)).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return distributed.all_sum(float(loss_sum.detach()), self.ctx) / total

    def epoch(self, rng: np.random.Generator, prog: _Progress, max_steps: int | None,
              advance: Any) -> tuple[list[float], bool]:
        """The training losses of one pass over the data, and whether ``max_steps`` stopped it early."""
        perm = torch.as_tensor(rng.permutation(self.n_train))
        losses: list[float] = []
        self.policy.train()
        for s in range(self.steps_per_epoch):
            loss = self.step(perm[s * self.batch:(s + 1) * self.batch], rng)
            if loss is not None:
                losses.append(loss)
            prog.step += 1
            advance(losses)
            if max_steps is not None and prog.step >= max_steps:
                return losses, True
        return losses, False


def curve_path(out: Path) -> Path:
    return out.with_name(out.stem + ".curve.csv")


def last_path(out: Path) -> Path:
    return out.with_name(out.stem + ".last.safetensors")


def average_path(out: Path) -> Path:
    return out.with_name(out.stem + ".avg.safetensors")


class _WeightAverage:
    """The running mean of the weights at the end of epochs ``start``, ``start + every``, ... (torch's
    ``AveragedModel``), written to ``<out>.avg.safetensors`` with the epochs it holds and its validation gap.

    A resumed run continues the mean found there when it was made with the same ``start`` and ``every``
    and holds no epoch after the one resumed from; otherwise it starts a new one.
    """

    def __init__(self, policy: BQPolicy, start: int, every: int, out: Path, resumed_epoch: int):
        from torch.optim.swa_utils import AveragedModel

        self.start, self.every, self.path = start, every, average_path(out)
        self.model = AveragedModel(policy)
        self.epochs: list[int] = []
        self.gap = math.nan
        if resumed_epoch > 0 and self.path.is_file():
            state, meta = load_checkpoint(self.path)
            held = meta.get("averaging", {})
            epochs = [int(e) for e in held.get("epochs", [])]
            if (held.get("from"), held.get("every")) == (start, every) and epochs and max(epochs) <= resumed_epoch:
                self.model.module.load_state_dict(state)
                self.model.n_averaged.fill_(len(epochs))
                self.epochs, self.gap = epochs, float(held.get("val_gap_pct", math.nan))

    def due(self, epoch: int) -> bool:
        return epoch >= self.start and (epoch - self.start) % self.every == 0

    def update(self, policy: BQPolicy, epoch: int, validate: Any, meta: dict[str, Any]) -> None:
        """Add ``policy``'s weights as those of ``epoch``, validate the mean and write it."""
        self.model.update_parameters(policy)
        self.epochs.append(epoch)
        self.gap = validate(self.model.module)
        save_checkpoint(self.path, _cpu_copy(self.model.module),
                        {**meta, "weights": f"mean of the weights at the end of epochs {self.epochs}",
                         "averaging": self.summary()})

    def summary(self) -> dict[str, Any]:
        return {"from": self.start, "every": self.every, "epochs": self.epochs, "val_gap_pct": self.gap}


def _checkpoint_path(out: str | Path) -> Path:
    out = Path(out)
    return out if out.suffix == ".safetensors" else out.with_name(out.name + ".safetensors")


def validation_gap(policy: BQPolicy, instances: list[Any], objectives: np.ndarray, device: str,
                   batch: int = 256) -> float:
    """Mean gap (%) of greedy decoding to the label objectives (an infeasible answer counts as NaN).

    Decoded in fp32 on every device, so that curves compare across machines and precisions.
    """
    from opsrl.routing.decode import decode

    prob = get_problem(policy.config.problem)
    was_training = policy.training
    sols = decode(policy, instances, device=device, batch=batch, precision="fp32")
    policy.train(was_training)
    gaps = []
    for inst, sol, ref in zip(instances, sols, objectives):
        ev = prob.evaluate(inst, sol)
        gaps.append(gap_pct(ev.objective, float(ref), prob.sense) if ev.feasible else math.nan)
    return float(np.mean(gaps))


def _write_curve(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _read_curve(path: Path, upto_epoch: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["epoch"]) <= upto_epoch]


def _progress_bar(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled, transient=False)


def _resume_state(resume: Path, problem: str) -> tuple[dict[str, Any], dict[str, Any], _Progress]:
    """Weights, metadata and counters of the checkpoint to resume from."""
    state, meta = load_checkpoint(resume)
    if meta.get("problem") != problem:
        raise OpsrlError(f"{resume}: a checkpoint for {meta.get('problem')!r}, not {problem}")
    metrics = meta.get("metrics", {})
    prog = _Progress(epoch=int(metrics.get("epochs_done", 0)), step=int(metrics.get("steps", 0)),
                     best=float(metrics.get("best_val_gap_pct", math.inf)), best_epoch=int(metrics.get("best_epoch", 0)))
    return state, meta, prog


def _start(problem: str, preset: str, resume: Path | None, out: Path, device: str,
           lr: float) -> tuple[BQPolicy, Any, dict[str, Any], _Progress]:
    """A fresh policy of ``preset`` or the one to resume (weights, optimiser state, counters, best so far)."""
    if resume is None:
        policy = BQPolicy(PolicyConfig.preset(problem, preset)).to(device)
        return policy, torch.optim.Adam(policy.parameters(), lr=lr), _cpu_copy(policy), _Progress()
    state, meta, prog = _resume_state(resume, problem)
    policy = BQPolicy(PolicyConfig(**meta["architecture"])).to(device)
    policy.load_state_dict(state)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    if (opt_file := resume.with_suffix(".pt")).is_file():
        optimizer.load_state_dict(torch.load(opt_file, map_location=device, weights_only=True))
    best_state, prog.best, prog.best_epoch = _cpu_copy(policy), math.inf, 0
    if out.is_file():  # the best so far stays the best unless beaten
        best_state, best_meta = load_checkpoint(out)
        best_metrics = best_meta.get("metrics", {})
        prog.best = float(best_metrics.get("best_val_gap_pct", math.inf))
        prog.best_epoch = int(best_metrics.get("best_epoch", 0))
    return policy, optimizer, best_state, prog


def _cpu_copy(policy: BQPolicy) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}


def train(problem: str, data: Path, *, out: Path, preset: str = "small", epochs: int = 10, batch: int = 256,
          lr: float = 2.5e-4, lr_decay: float = 0.98, decay_every: int = 1, lr_epoch: int = 1,
          val_count: int = 128, device: str = "auto", resume: Path | None = None, seed: int = 0,
          progress: bool = True, max_steps: int | None = None, precision: str = "auto", average_from: int = 0,
          average_every: int = 1) -> dict[str, Any]:
    """Train a ``preset`` policy on the label file ``data`` for ``epochs`` epochs in all (a resumed run
    continues the count); writes the best checkpoint at ``out`` and returns the metrics.

    ``average_from`` E > 0 also writes the mean of the weights at the end of epochs E, E + ``average_every``,
    ... to ``<out>.avg.safetensors`` (see the module docstring).

    In a process group (WORLD_SIZE > 1: ``torchrun`` or ``opsrl.core.distributed.launch``) each
    process trains on its share of every global batch of ``batch`` rows; rank 0 validates and writes.
    ``precision`` (auto|fp32|bf16) is the autocast of the forward passes: auto is bf16 on CUDA
    (fp16 on GPUs without it) and fp32 on the CPU, where bf16 training measured slower.
    """
    from opsrl.core.device import choose_device
    from opsrl.routing.labels import load_labels

    t0 = time.perf_counter()
    ctx = distributed.context(choose_device(device))
    dev, progress = ctx.device, progress and ctx.is_main
    out = _checkpoint_path(out)
    held, instances, arrays = load_labels(Path(data))
    if held != problem:
        raise OpsrlError(f"{data}: holds {held} labels, not {problem}")
    if len(instances) <= val_count:
        raise OpsrlError(f"{data}: holds {len(instances)} instances; training needs more than val_count={val_count} "
                         "(the last val_count are held out for validation)")
    seed_everything(seed)
    static = static_from_instances(problem, instances, "cpu")
    labels = prepare_labels(problem, static, arrays, np.random.default_rng(seed))
    n_train = len(instances) - val_count
    val_instances, val_objectives = instances[n_train:], np.asarray(arrays["objective"])[n_train:]

    resume = None if resume is None else _checkpoint_path(resume)
    policy, optimizer, best_state, prog = _start(problem, preset, resume, out, dev, lr)
    config = policy.config
    earlier: list[dict[str, Any]] = []  # the recipes of the runs this one continues, oldest first
    if resume is not None:
        before = dict(json.loads(sidecar_path(resume).read_text()).get("training", {}))  # _start checked it
        preset = str(before.get("preset", preset))
        earlier = [*before.pop("history", []), before] if before else []
    prog.curve = _read_curve(curve_path(out), prog.epoch) if resume is not None else []

    run = _Run(problem, policy, optimizer, static, labels, n_train, batch, dev, ctx, precision)
    recipe = {"data": str(data), "label_solver": str(arrays["label_solver"]),
              "label_time_limit": float(arrays["label_time_limit"]), "size": int(instances[0].size),
              "train_count": n_train, "val_count": val_count, "epochs": epochs, "batch": batch, "lr": lr,
              "lr_decay": lr_decay, "decay_every": decay_every, "lr_epoch": lr_epoch, "preset": preset, "seed": seed,
              "device": dev, "precision": precision_name(run.amp),
              "augmentation": _AUGMENTATION.get(problem, "dihedral" if static.coords is not None else None),
              "resumed_from": str(resume) if resume is not None else None, "processes": ctx.world}
    if average_from > 0:
        recipe.update(average_from=average_from, average_every=average_every)
    if earlier:
        recipe["history"] = earlier
    average = (_WeightAverage(policy, average_from, max(average_every, 1), out, prog.epoch)
               if average_from > 0 and ctx.is_main else None)
    stopped = False
    with _progress_bar(progress) as bar:
        task = bar.add_task(f"train {problem}", total=run.steps_per_epoch * max(epochs - prog.epoch, 0))
        while prog.epoch < epochs and not stopped:
            epoch = prog.epoch + 1
            rate = lr * lr_decay ** (max(epoch - lr_epoch, 0) // max(decay_every, 1))
            for group in optimizer.param_groups:
                group["lr"] = rate

            def advance(losses: list[float]) -> None:
                recent = np.mean(losses[-50:]) if losses else math.nan
                bar.update(task, advance=1, description=f"train {problem} epoch {epoch}/{epochs} loss {recent:.4f}")

            losses, stopped = run.epoch(np.random.default_rng([seed, epoch]), prog, max_steps, advance)
            prog.epoch, prog.last_loss = epoch, float(np.mean(losses)) if losses else math.nan
            if not ctx.is_main:  # rank 0 validates and writes; the others go on with the next epoch
                continue
            prog.last_gap = validation_gap(policy, val_instances, val_objectives, dev)
            if prog.last_gap < prog.best or prog.best_epoch == 0:  # NaN gaps never beat a real one
                prog.best, prog.best_epoch = prog.last_gap, epoch
                best_state = _cpu_copy(policy)
            prog.curve.append({"epoch": epoch, "step": prog.step, "train_loss": prog.last_loss,
                               "val_gap_pct": prog.last_gap, "lr": rate, "seconds": round(time.perf_counter() - t0, 3)})
            _save(out, policy, optimizer, best_state, config, recipe, prog)
            mean = ""
            if average is not None and average.due(epoch):
                average.update(policy, epoch, lambda p: validation_gap(p, val_instances, val_objectives, dev),
                               _meta(config, recipe, prog))
                mean = f", mean of {len(average.epochs)} epochs {average.gap:.3f} %"
            if progress:
                bar.console.log(f"epoch {epoch}: loss {prog.last_loss:.4f}, val gap {prog.last_gap:.3f} %, "
                                f"best {prog.best:.3f} % (epoch {prog.best_epoch}){mean}")
    metrics = _metrics(prog)
    metrics.update(problem=problem, checkpoint=str(out), last_checkpoint=str(last_path(out)),
                   curve=str(curve_path(out)), seconds=time.perf_counter() - t0, device=dev, stopped_at_max_steps=stopped)
    if average is not None and average.epochs:
        metrics.update(average_checkpoint=str(average.path), average=average.summary())
    return metrics


def _metrics(prog: _Progress) -> dict[str, Any]:
    return {"epochs_done": prog.epoch, "steps": prog.step, "train_loss": prog.last_loss,
            "final_val_gap_pct": prog.last_gap, "best_val_gap_pct": prog.best, "best_epoch": prog.best_epoch}


def _meta(config: PolicyConfig, recipe: dict[str, Any], prog: _Progress) -> dict[str, Any]:
    return {"kind": "bq", "problem": config.problem, "architecture": config.to_dict(), "training": recipe,
            "metrics": _metrics(prog)}


def _save(out: Path, policy: BQPolicy, optimizer: Any, best_state: dict[str, Any], config: PolicyConfig,
          recipe: dict[str, Any], prog: _Progress) -> None:
    """The best checkpoint at ``out``, the last one beside it with the optimiser state, and the curve."""
    meta = _meta(config, recipe, prog)
    last = last_path(out)
    save_checkpoint(last, policy.state_dict(), {**meta, "weights": f"epoch {prog.epoch} (last)"})
    tmp = last.with_suffix(".pt.partial")
    torch.save(optimizer.state_dict(), tmp)
    os.replace(tmp, last.with_suffix(".pt"))
    save_checkpoint(out, best_state, {**meta, "weights": f"epoch {prog.best_epoch} (best validation gap)"})
    _write_curve(curve_path(out), prog.curve)
