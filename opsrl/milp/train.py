"""Imitation of strong branching: ``opsrl train --problem milp --distribution D|mix --out CKPT``.

Reads the samples ``opsrl milp collect`` wrote (a torch-geometric dataset of node graphs), trains
Gasse's GCNN with cross-entropy on the expert's choice (Adam, batch 32, early stopping on validation
top-1 accuracy), and for ``--policy hybrid`` then trains the hybrid's node MLP on the frozen GCNN's
root embeddings. Reports top-1/5/10 accuracy.

Data parallel (``opsrl train --nproc N`` or ``torchrun``): every process walks the same seeded order of
global batches of ``batch`` samples and runs its share of each through DistributedDataParallel, the
loss scaled so the averaged gradient is the single-process gradient of the global batch; validation is
shared out the same way and summed over the processes, so every process takes the same early-stopping,
learning-rate and time-budget decisions. Rank 0 trains the hybrid's MLP (a small, fast stage), logs and
writes the checkpoints (weights without ``module.`` prefixes: they load anywhere).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data, Dataset

from opsrl.core import distributed
from opsrl.core.errors import OpsrlError, UsageError
from opsrl.milp.collect import sample_dir
from opsrl.milp.features import NODE_COLUMNS
from opsrl.milp.policy import GCNN, Hybrid, cross_entropy_topk, tied_best


class BipartiteSample(Data):
    """One expert sample as a graph: constraint and variable features, edges, candidates and target."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "edge_index":
            return torch.tensor([[self.cons.size(0)], [self.var.size(0)]])
        if key == "cand_pos":
            return self.var.size(0)
        return super().__inc__(key, value, *args, **kwargs)


def sample_files(folder: Path) -> list[Path]:
    """The samples of the finished episodes in ``folder`` (a stopped episode's files are left out)."""
    done = {p.stem for p in folder.glob("*.done")}
    return sorted(p for p in folder.glob("e*_[0-9][0-9][0-9].npz") if p.name.split("_")[0] in done)


class SampleDataset(Dataset):
    """The ``.npz`` samples of one or more folders, read lazily as ``BipartiteSample`` graphs."""

    def __init__(self, folders: list[Path]):
        super().__init__()
        self.files = [f for folder in folders for f in sample_files(folder)]

    def len(self) -> int:
        return len(self.files)

    def get(self, idx: int) -> BipartiteSample:
        with np.load(self.files[idx]) as z:
            data = BipartiteSample(
                cons=torch.from_numpy(z["cons"]), edge_index=torch.from_numpy(z["edge_index"]),
                edge_attr=torch.from_numpy(z["edge_attr"]), var=torch.from_numpy(z["var"]),
                cand_pos=torch.from_numpy(z["cand_pos"]), target=torch.tensor([int(z["target"])]),
                node_feats=torch.from_numpy(z["node_feats"]), root_rows=torch.from_numpy(z["root_rows"]),
                best=torch.from_numpy(tied_best(z["scores"])))
        data.num_nodes = data.var.size(0)
        return data


def _folders(distribution: str, split: str) -> list[Path]:
    from opsrl.milp.distributions import Mix, resolve

    dist = resolve(distribution)
    own = sample_dir(distribution, split)
    if own.is_dir() and any(own.glob("*.done")):
        return [own]
    if isinstance(dist, Mix):  # a mix trains on its members' samples
        return [sample_dir(m.name, split) for m in dist.members if sample_dir(m.name, split).is_dir()]
    return []


def fit_prenorm(model: GCNN, dataset: SampleDataset, n: int = 200) -> None:
    """Fit the frozen input normalisation on the first ``n`` training samples."""
    idx = np.linspace(0, len(dataset) - 1, min(n, len(dataset))).astype(int)
    samples = [dataset[int(i)] for i in idx]
    model.cons_norm.fit(torch.cat([s.cons for s in samples]))
    model.edge_norm.fit(torch.cat([s.edge_attr for s in samples]))
    model.var_norm.fit(torch.cat([s.var for s in samples]))


def shard_batches(dataset: Dataset, order: torch.Tensor, batch: int, ctx: distributed.Context,
                  fill: bool = True) -> Iterator[tuple[Batch, int, int]]:
    """This process's share of each global batch of ``batch`` samples of ``dataset`` taken in ``order``:
    (its samples as one batched graph, how many of them count, the global batch's size).

    With one process the share is the whole batch. A share that is empty (fewer samples than processes)
    is one sample that counts 0 when ``fill`` (a training step needs every process), else skipped.
    """
    for s in range(0, len(order), batch):
        rows = order[s:s + batch]
        mine = distributed.shard(rows, ctx)
        if len(mine) == 0 and not fill:
            continue
        graphs = Batch.from_data_list([dataset[int(i)] for i in (mine if len(mine) else rows[:1])],
                                      follow_batch=["cand_pos"])
        yield graphs, len(mine), len(rows)


def run_gcnn_epoch(model: Any, loader: Iterable[Any], device: str, optimizer: Any = None,
                   ctx: distributed.Context | None = None) -> dict[str, float]:
    """One pass over ``loader`` (training when an optimizer is given): mean loss and top-k accuracy.

    ``loader`` yields batched graphs (a torch-geometric DataLoader, one process) or the triples of
    ``shard_batches``; then the sums are taken over the processes of ``ctx``, so every process gets the
    same figures, and in training (``model`` wrapped by ``distributed.wrap``) the loss is scaled so
    that the averaged gradient is the gradient of the global batch's mean cross-entropy.
    """
    ctx = ctx or distributed.Context(device=device)
    totals = {"loss": 0.0, "acc1": 0.0, "acc5": 0.0, "acc10": 0.0}
    n = 0
    model.train(optimizer is not None)
    for item in loader:
        graphs, k, size = item if isinstance(item, tuple) else (item, item.num_graphs, item.num_graphs)
        graphs = graphs.to(device)
        with torch.set_grad_enabled(optimizer is not None):
            logits = model(graphs.cons, graphs.edge_index, graphs.edge_attr, graphs.var)[graphs.cand_pos]
            loss, acc = cross_entropy_topk(logits, graphs.cand_pos_batch, graphs.target, graphs.best)
        if optimizer is not None:
            optimizer.zero_grad()
            (loss * (k * ctx.world / size)).backward()
            optimizer.step()
        n += k
        totals["loss"] += float(loss.detach()) * k
        for key, kk in (("acc1", 1), ("acc5", 5), ("acc10", 10)):
            totals[key] += acc[kk] * k
    count = distributed.all_sum(n, ctx)
    return {key: distributed.all_sum(v, ctx) / max(count, 1) for key, v in totals.items()}


def _past(start: float, max_seconds: float, ctx: distributed.Context) -> bool:
    """Whether any process is past the time budget (the same answer in every process)."""
    if not math.isfinite(max_seconds):
        return False
    return distributed.all_sum(float(time.perf_counter() - start > max_seconds), ctx) > 0


def train_gcnn(train_set: SampleDataset, val_set: SampleDataset, device: str, epochs: int, batch: int, lr: float,
               patience: int, seed: int, log: Any, emb: int = 64, max_seconds: float = math.inf,
               ctx: distributed.Context | None = None) -> tuple[GCNN, dict[str, Any]]:
    """Gasse's recipe: Adam, lr x0.2 after ``patience`` epochs without a better validation accuracy,
    stop after ``2 * patience``; returns the best model by validation top-1 accuracy.

    In a process group (``ctx`` from ``distributed.context``) each process trains on its share of every
    global batch of ``batch`` samples and validates its share of the validation set; the sums over the
    processes make every decision the same everywhere. The model returned is the plain module.
    """
    ctx = ctx or distributed.Context(device=device)
    torch.manual_seed(seed)
    model = GCNN(emb)
    fit_prenorm(model, train_set)
    model.to(device)
    ddp = distributed.wrap(model, ctx)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    val_order = torch.arange(len(val_set))
    best, best_state, since, history = -1.0, None, 0, []
    start = time.perf_counter()
    for epoch in range(epochs):
        if epoch > 0 and _past(start, max_seconds, ctx):
            log(f"gcnn: stopping after {epoch} epochs, past the time budget of {max_seconds:g} s")
            break
        t0 = time.perf_counter()
        order = torch.randperm(len(train_set), generator=gen)
        tr = run_gcnn_epoch(ddp, shard_batches(train_set, order, batch, ctx), device, opt, ctx)
        va = run_gcnn_epoch(model, shard_batches(val_set, val_order, batch, ctx, fill=False), device, ctx=ctx)
        history.append({"epoch": epoch, "train": tr, "val": va, "seconds": time.perf_counter() - t0})
        log(f"gcnn epoch {epoch}: train loss {tr['loss']:.3f} acc1 {tr['acc1']:.3f} | val loss {va['loss']:.3f} "
            f"acc1 {va['acc1']:.3f} acc5 {va['acc5']:.3f} acc10 {va['acc10']:.3f} ({history[-1]['seconds']:.0f} s)")
        if va["acc1"] > best:
            best, since = va["acc1"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since % patience == 0:
                for g in opt.param_groups:
                    g["lr"] *= 0.2
            if since >= 2 * patience:
                break
    model.load_state_dict(best_state)
    return model.eval(), {"history": history, "val": history[[h["val"]["acc1"] for h in history].index(best)]["val"]}


def _root_embeddings(gnn: GCNN, files: list[Path], device: str) -> dict[Path, torch.Tensor]:
    """Root variable embeddings of every episode that ``files`` come from (one GCNN pass per episode)."""
    out = {}
    with torch.no_grad():
        for f in files:
            root = f.with_name(f.name.split("_")[0] + "_root.npz")
            if root in out:
                continue
            with np.load(root) as z:
                tensors = [torch.from_numpy(z[k]).to(device) for k in ("cons", "edge_index", "edge_attr", "var")]
            out[root] = gnn.embed(*tensors)
    return out


def _hybrid_batches(dataset: SampleDataset, roots: dict[Path, torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
    items = []
    for f in dataset.files:
        emb = roots[f.with_name(f.name.split("_")[0] + "_root.npz")]
        with np.load(f) as z:
            rows = torch.from_numpy(z["root_rows"])
            feats = torch.from_numpy(z["node_feats"])
            target = int(z["target"])
            best = torch.from_numpy(tied_best(z["scores"]))
        e = emb[rows.clamp_min(0).to(emb.device)] * (rows >= 0).unsqueeze(-1).to(emb.device)
        items.append((e, feats.to(emb.device), target, best.to(emb.device)))
    return items


def _labels(items: list[tuple[Any, ...]], device: Any = "cpu") -> tuple[torch.Tensor, ...]:
    """For the candidates of ``items`` in concatenated order: sample ids, each sample's expert choice,
    and which candidates tie the best score (``cross_entropy_topk``'s arguments after the logits)."""
    ids = torch.cat([torch.full((len(it[1]),), j, dtype=torch.long) for j, it in enumerate(items)]).to(device)
    target = torch.tensor([it[2] for it in items], device=device)
    return ids, target, torch.cat([it[3] for it in items]).to(device)


def _hybrid_pass(model: Hybrid, items: list, batch: int, optimizer: Any = None, rng: Any = None) -> dict[str, float]:
    order = rng.permutation(len(items)) if rng is not None else np.arange(len(items))
    totals, n = {"loss": 0.0, "acc1": 0.0, "acc5": 0.0, "acc10": 0.0}, 0
    model.train(optimizer is not None)
    for s in range(0, len(items), batch):
        chunk = [items[i] for i in order[s:s + batch]]
        emb = torch.cat([c[0] for c in chunk])
        feats = torch.cat([c[1] for c in chunk])
        with torch.set_grad_enabled(optimizer is not None):
            loss, acc = cross_entropy_topk(model.score(emb, feats), *_labels(chunk, emb.device))
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        n += len(chunk)
        totals["loss"] += float(loss.detach()) * len(chunk)
        for key, kk in (("acc1", 1), ("acc5", 5), ("acc10", 10)):
            totals[key] += acc[kk] * len(chunk)
    return {key: v / max(n, 1) for key, v in totals.items()}


def train_hybrid(gnn: GCNN, train_set: SampleDataset, val_set: SampleDataset, device: str, epochs: int,
                 batch: int, lr: float, patience: int, seed: int, log: Any) -> tuple[Hybrid, dict[str, Any]]:
    """The hybrid's node MLP on the frozen GCNN's root embeddings and the samples' node features."""
    torch.manual_seed(seed)
    model = Hybrid(gnn.emb).to(device)
    model.gnn.load_state_dict(gnn.state_dict())
    for p in model.gnn.parameters():
        p.requires_grad_(False)
    model.node_norm.fit(torch.cat([torch.from_numpy(np.load(f)["node_feats"]) for f in train_set.files[:300]]))
    tr_items = _hybrid_batches(train_set, _root_embeddings(model.gnn, train_set.files, device))
    va_items = _hybrid_batches(val_set, _root_embeddings(model.gnn, val_set.files, device))
    opt = torch.optim.Adam(model.mlp.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    best, best_state, since, history = -1.0, None, 0, []
    for epoch in range(epochs):
        tr = _hybrid_pass(model, tr_items, batch, opt, rng)
        va = _hybrid_pass(model, va_items, batch)
        history.append({"epoch": epoch, "train": tr, "val": va})
        if epoch % 10 == 0:
            log(f"hybrid epoch {epoch}: train acc1 {tr['acc1']:.3f} | val acc1 {va['acc1']:.3f} acc5 {va['acc5']:.3f}")
        if va["acc1"] > best:
            best, since = va["acc1"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= 2 * patience:
                break
    model.load_state_dict(best_state)
    return model.eval(), {"history_len": len(history),
                          "val": history[[h["val"]["acc1"] for h in history].index(best)]["val"]}


def rule_scores(items: list[tuple[torch.Tensor, ...]], rule: str) -> list[torch.Tensor]:
    """Per-sample candidate scores of a classical rule, read off the samples' node features."""
    column = NODE_COLUMNS[{"pscost": "pscost_rel", "mostinf": "dist_to_int"}[rule]]
    return [it[1][:, column] for it in items]


def _topk(scores: list[torch.Tensor], items: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
    _, acc = cross_entropy_topk(torch.cat(scores), *_labels(items))
    return {f"acc{k}": v for k, v in acc.items()}


def accuracy(checkpoint: str | Path, distribution: str | None = None, split: str = "val",
             folder: Path | None = None) -> dict[str, Any]:
    """Top-1/5/10 accuracy of a policy on the expert samples of ``split`` (ties with the best strong-branching
    score count, as Gasse et al. count them), beside pseudo-cost, most-infeasible and random choice on the
    same samples: how much of strong branching the policy has learned beyond the rules it explores with."""
    from opsrl.milp.policy import load_policy

    folders = [folder] if folder is not None else _folders(distribution or "", split)
    dataset = SampleDataset([f for f in folders if f.is_dir()])
    if len(dataset) == 0:
        raise OpsrlError(f"no {split} samples for {distribution or folder}: run `opsrl milp collect --split {split} ...` first")
    policy = load_policy(checkpoint)
    with torch.no_grad():
        if policy.kind == "hybrid":
            items = _hybrid_batches(dataset, _root_embeddings(policy.gnn, dataset.files, "cpu"))
            scores = [policy.score(e, f) for e, f, *_ in items]
        else:  # the GCNN scores each sample's own node graph: no root embeddings
            items, scores = [], []
            for sample in dataset:
                scores.append(policy(sample.cons, sample.edge_index, sample.edge_attr, sample.var)[sample.cand_pos])
                items.append((None, sample.node_feats, int(sample.target), sample.best))
    random = [float(it[3].float().mean()) for it in items]  # chance that a uniform pick is a best one
    return {"samples": len(dataset), "policy": _topk(scores, items), "pscost": _topk(rule_scores(items, "pscost"), items),
            "mostinf": _topk(rule_scores(items, "mostinf"), items), "random_acc1": float(np.mean(random)),
            "candidates": float(np.mean([len(it[1]) for it in items]))}


def train_from_options(options: Any) -> dict[str, Any]:
    """``opsrl train --problem milp``: --distribution (or --data SAMPLE_FOLDER), --policy gcnn|hybrid,
    --epochs, --batch, --lr, --set patience=N, --set val=DIST (validation samples of another distribution), --set emb=N (GCNN
    width, 64 as Gasse), --set hybrid_epochs=N, --set hybrid_batch=N, --set max_seconds=S (GCNN time budget).

    Run in every process of a group (``opsrl train --nproc N`` launches them; torchrun too) it trains
    the GCNN data-parallel; rank 0 alone then trains the hybrid's MLP (on its frozen GCNN, a stage
    small enough for one process), logs and writes the checkpoints. Rank 0's metrics are the run's."""
    from opsrl.core.checkpoint import save_checkpoint
    from opsrl.core.device import choose_device
    from opsrl.core.seeding import seed_everything

    options.reject("distribution", "data", "policy", "epochs", "batch", "lr", "sets", "nproc")
    unknown = set(options.sets) - {"patience", "val", "hybrid_epochs", "hybrid_batch", "emb", "max_seconds"}
    if unknown:
        raise UsageError(f"--set {sorted(unknown)[0]}: milp training takes patience=, val=, hybrid_epochs=, hybrid_batch=, emb=, max_seconds=")
    if options.distribution is None and options.data is None:
        raise UsageError("training milp needs --distribution D (samples from `opsrl milp collect`) or --data FOLDER")
    kind = options.policy or "hybrid"
    if kind not in ("gcnn", "hybrid"):
        raise UsageError(f"--policy {kind}: expected gcnn or hybrid")
    name = options.distribution or str(options.data)
    if options.data is not None:
        train_dirs, val_dirs = [Path(options.data) / "train"], [Path(options.data) / "val"]
    else:
        train_dirs = _folders(options.distribution, "train")
        val_dirs = _folders(options.sets.get("val", options.distribution), "val")
    train_set, val_set = SampleDataset(train_dirs), SampleDataset(val_dirs)
    if len(train_set) == 0:
        raise OpsrlError(f"no training samples for {name}: run `opsrl milp collect --distribution {name} ...` first")
    if len(val_set) == 0:
        raise OpsrlError(f"no validation samples for {name}: run `opsrl milp collect --split val ...` first")
    seed_everything(options.seed)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    ctx = distributed.context(choose_device(options.device))
    device = ctx.device
    epochs, batch, lr = options.epochs or 20, options.batch or 32, options.lr or 1e-3
    patience = int(options.sets.get("patience", 3))
    emb = int(options.sets.get("emb", 64))
    max_seconds = float(options.sets.get("max_seconds", math.inf))
    log = (lambda msg: print(msg, flush=True)) if options.progress and ctx.is_main else (lambda msg: None)
    log(f"milp {kind}: {len(train_set)} training, {len(val_set)} validation samples on {device}"
        + (f" ({ctx.world} processes)" if ctx.distributed else ""))
    t0 = time.perf_counter()
    gnn, gmetrics = train_gcnn(train_set, val_set, device, epochs, batch, lr, patience, options.seed, log, emb,
                               max_seconds, ctx)
    metrics: dict[str, Any] = {"gcnn_val": gmetrics["val"], "gcnn_epochs": len(gmetrics["history"])}
    if not ctx.is_main:  # rank 0 trains the hybrid stage and writes
        return _finite(metrics)
    model: Any = gnn
    if kind == "hybrid":
        h_epochs = int(options.sets.get("hybrid_epochs", 200))
        h_batch = int(options.sets.get("hybrid_batch", 8))
        model, hmetrics = train_hybrid(gnn, train_set, val_set, device, h_epochs, h_batch, lr, 10, options.seed, log)
        metrics["hybrid_val"] = hmetrics["val"]
    val = metrics["hybrid_val" if kind == "hybrid" else "gcnn_val"]
    metrics.update({"val_acc1": val["acc1"], "val_acc5": val["acc5"], "val_acc10": val["acc10"],
                    "train_samples": len(train_set), "val_samples": len(val_set),
                    "train_seconds": time.perf_counter() - t0, "processes": ctx.world})
    nproc = f" --nproc {ctx.world}" if ctx.distributed else ""
    meta = {"problem": "milp", "kind": kind, "architecture": {"emb": emb}, "distribution": name, "metrics": metrics,
            "recipe": {"command": f"opsrl train --problem milp --distribution {name} --policy {kind} --epochs {epochs} "
                                  f"--batch {batch} --lr {lr:g} --seed {options.seed}"
                                  + "".join(f" --set {k}={v}" for k, v in sorted(options.sets.items()))
                                  + f"{nproc} --out {options.out}",
                       "train_folders": [str(d) for d in train_dirs], "val_folders": [str(d) for d in val_dirs],
                       "processes": ctx.world}}
    path = save_checkpoint(options.out, model.cpu().state_dict(), meta)
    metrics["checkpoint"] = str(path)
    if kind == "hybrid":  # the GCNN stage is a policy too (run at every node): keep it beside the hybrid
        gmeta = {**meta, "kind": "gcnn", "metrics": {**metrics, "val_acc1": gmetrics["val"]["acc1"],
                                                     "val_acc5": gmetrics["val"]["acc5"],
                                                     "val_acc10": gmetrics["val"]["acc10"]},
                 "note": f"GCNN stage of the hybrid policy {path.name}"}
        gpath = path.with_name(path.stem + "_gcnn.safetensors")
        metrics["gcnn_checkpoint"] = str(save_checkpoint(gpath, gnn.cpu().state_dict(), gmeta))
    return _finite(metrics)


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics with non-finite numbers as None (JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
