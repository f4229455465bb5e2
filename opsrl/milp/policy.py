"""Learned branching policies: Gasse's GCNN in torch-geometric, and a hybrid for the CPU.

``gcnn``: pre-normalised features, embedding 64 (Gasse; ``emb`` makes it cheaper), two half-convolutions (variables to constraints,
constraints to variables) with sum aggregation, an output MLP giving a logit per variable; run at
every node. ``hybrid`` (after Gupta et al. 2020): the GCNN's variable embeddings computed once at the
root, and at each node a small MLP on (root embedding, cheap node features of the candidate), so a
node costs no graph extraction and no graph network.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from opsrl.core.errors import OpsrlError
from opsrl.milp.features import (N_CONS_FEATS, N_EDGE_FEATS, N_NODE_FEATS, N_VAR_FEATS, Graph,
                                 GraphExtractor, candidate_positions, node_features)
from opsrl.weights import shipped

EMB = 64


class PreNorm(nn.Module):
    """Fixed affine normalisation of input features, fitted once on training data then frozen (Gasse)."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))

    def fit(self, x: torch.Tensor) -> None:
        self.shift.copy_(-x.mean(0))
        std = x.std(0)
        self.scale.copy_(torch.where(std > 1e-8, 1.0 / std.clamp_min(1e-8), torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.shift) * self.scale


class HalfConv(MessagePassing):
    """One half-convolution of the bipartite graph: messages from the left nodes to the right nodes."""

    def __init__(self, emb: int = EMB) -> None:
        super().__init__(aggr="add")
        self.left = nn.Linear(emb, emb)
        self.edge = nn.Linear(N_EDGE_FEATS, emb, bias=False)
        self.right = nn.Linear(emb, emb, bias=False)
        self.final = nn.Sequential(nn.LayerNorm(emb), nn.ReLU(), nn.Linear(emb, emb))
        self.post = nn.LayerNorm(emb)
        self.out = nn.Sequential(nn.Linear(2 * emb, emb), nn.ReLU(), nn.Linear(emb, emb))

    def forward(self, left: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                right: torch.Tensor) -> torch.Tensor:
        # the per-node linear maps run on the nodes before the gather, not on every edge after it
        # (the same numbers: a linear map commutes with copying rows); edges are (left, right)
        agg = self.propagate(edge_index, size=(left.shape[0], right.shape[0]),
                             node_features=(self.left(left), self.right(right)), edge_features=self.edge(edge_attr))
        return self.out(torch.cat([self.post(agg), right], dim=-1))

    def message(self, node_features_i: torch.Tensor, node_features_j: torch.Tensor,
                edge_features: torch.Tensor) -> torch.Tensor:
        return self.final(node_features_j + edge_features + node_features_i)


class GCNN(nn.Module):
    """Gasse et al.'s graph convolutional branching policy: a logit per variable."""

    kind = "gcnn"

    def __init__(self, emb: int = EMB) -> None:
        super().__init__()
        self.emb = emb
        self.cons_norm = PreNorm(N_CONS_FEATS)
        self.edge_norm = PreNorm(N_EDGE_FEATS)
        self.var_norm = PreNorm(N_VAR_FEATS)
        self.cons_embed = nn.Sequential(nn.Linear(N_CONS_FEATS, emb), nn.ReLU(), nn.Linear(emb, emb), nn.ReLU())
        self.var_embed = nn.Sequential(nn.Linear(N_VAR_FEATS, emb), nn.ReLU(), nn.Linear(emb, emb), nn.ReLU())
        self.v_to_c = HalfConv(emb)
        self.c_to_v = HalfConv(emb)
        self.head = nn.Sequential(nn.Linear(emb, emb), nn.ReLU(), nn.Linear(emb, 1, bias=False))

    def embed(self, cons: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
              var: torch.Tensor) -> torch.Tensor:
        """Variable embeddings after the two half-convolutions."""
        c = self.cons_embed(self.cons_norm(cons))
        e = self.edge_norm(edge_attr)
        v = self.var_embed(self.var_norm(var))
        rev = torch.stack([edge_index[1], edge_index[0]])
        c = self.v_to_c(v, rev, e, c)
        return self.c_to_v(c, edge_index, e, v)

    def forward(self, cons: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                var: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(cons, edge_index, edge_attr, var)).squeeze(-1)

    def candidate_logits(self, cons: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                         var: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """``forward(...)[cand]`` at branching time, computing only what the candidates' logits depend on: the
        second half-convolution on the edges into the candidates, the first on the edges into the constraints
        those touch (a node has tens of candidates among thousands of variables)."""
        e = self.edge_norm(edge_attr)
        v = self.var_embed(self.var_norm(var))
        row, col = edge_index
        into_cand = _slots(cand, var.shape[0])[col]
        to_cand = into_cand >= 0
        cons_used = torch.unique(row[to_cand])
        cons_slot = _slots(cons_used, cons.shape[0])
        into_cons = cons_slot[row]
        to_cons = into_cons >= 0
        c = self.cons_embed(self.cons_norm(cons[cons_used]))
        c = self.v_to_c(v, torch.stack([col[to_cons], into_cons[to_cons]]), e[to_cons], c)
        sub = torch.stack([into_cons[to_cand], into_cand[to_cand]])
        return self.head(self.c_to_v(c, sub, e[to_cand], v[cand])).squeeze(-1)


def _slots(index: torch.Tensor, size: int) -> torch.Tensor:
    """A map from ``range(size)`` to positions in ``index`` (-1 where absent)."""
    slot = torch.full((size,), -1, dtype=torch.long, device=index.device)
    slot[index] = torch.arange(len(index), device=index.device)
    return slot


class Hybrid(nn.Module):
    """Root GCNN embedding (computed once) + a small MLP per candidate at the nodes (Gupta et al. 2020)."""

    kind = "hybrid"

    def __init__(self, emb: int = EMB, hidden: int = 32) -> None:
        super().__init__()
        self.gnn = GCNN(emb)
        self.node_norm = PreNorm(N_NODE_FEATS)
        self.mlp = nn.Sequential(nn.Linear(emb + N_NODE_FEATS, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def score(self, root_emb: torch.Tensor, node_feats: torch.Tensor) -> torch.Tensor:
        """Logits of candidates from their root embeddings ``[k, emb]`` and node features ``[k, 5]``."""
        return self.mlp(torch.cat([root_emb, self.node_norm(node_feats)], dim=-1)).squeeze(-1)


def graph_tensors(graph: Graph, device: str = "cpu") -> tuple[torch.Tensor, ...]:
    return (torch.from_numpy(graph.cons).to(device), torch.from_numpy(graph.edge_index).to(device),
            torch.from_numpy(graph.edge_attr).to(device), torch.from_numpy(graph.var).to(device))


def build(kind: str, **arch: Any) -> nn.Module:
    if kind == "gcnn":
        return GCNN(**arch)
    if kind == "hybrid":
        return Hybrid(**arch)
    raise OpsrlError(f"unknown milp policy kind {kind!r}: expected gcnn or hybrid")


def shipped_checkpoint(name: str = "setcover") -> Path:
    """Where the shipped milp checkpoint ``milp_<name>`` lives (it may not exist)."""
    return shipped(f"milp_{name}")


def load_policy(checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> nn.Module:
    """A branching policy from ``checkpoint`` (None: the shipped set cover one), in eval mode."""
    from opsrl.core.checkpoint import load_checkpoint

    path = Path(checkpoint) if checkpoint else shipped_checkpoint()
    if path.suffix != ".safetensors" and not path.is_file():
        named = shipped_checkpoint(str(checkpoint))
        path = named if named.is_file() else path.with_suffix(".safetensors")
    state, meta = load_checkpoint(path)
    if meta.get("problem") != "milp":
        raise OpsrlError(f"{path}: a checkpoint for {meta.get('problem')!r}, not milp")
    policy = build(meta.get("kind", "gcnn"), **meta.get("architecture", {}))
    try:
        policy.load_state_dict(state)
    except RuntimeError as exc:
        raise OpsrlError(f"{path}: weights do not fit a {meta.get('kind')} policy ({str(exc).splitlines()[0]})") from None
    policy.meta = meta
    return policy.to(device).eval()


def learned_branchrule(policy: nn.Module) -> Any:
    """A factory ``model -> Branchrule`` that branches on the policy's best LP candidate."""
    from pyscipopt import Branchrule, SCIP_RESULT

    torch.set_num_threads(1)
    device = next(policy.parameters()).device

    class LearnedBranching(Branchrule):
        def __init__(self, model: Any):
            self.model = model
            self.extractor = GraphExtractor(cache=True)
            self.feature_s = self.inference_s = 0.0
            self.calls = 0
            self.root_emb: torch.Tensor | None = None
            self.var_row: dict[int, int] = {}

        def branchexeclp(self, allowaddcons: bool) -> dict[str, Any]:
            self.calls += 1
            cands, sols, fracs, _, npriocands, _ = self.model.getLPBranchCands()
            cands, sols, fracs = cands[:npriocands], sols[:npriocands], fracs[:npriocands]
            if len(cands) == 1:
                self.model.branchVar(cands[0])
                return {"result": SCIP_RESULT.BRANCHED}
            with torch.inference_mode():
                if policy.kind == "gcnn":
                    t0 = time.perf_counter()
                    graph = self.extractor.extract(self.model)
                    pos = candidate_positions(cands)
                    t1 = time.perf_counter()
                    logits = policy.candidate_logits(*graph_tensors(graph, device), torch.from_numpy(pos).to(device))
                else:
                    t0 = time.perf_counter()
                    if self.root_emb is None:
                        graph = self.extractor.extract(self.model)
                        self.var_row = {col.getVar().getIndex(): col.getLPPos() for col in self.model.getLPColsData()}
                        t1 = time.perf_counter()
                        self.feature_s += t1 - t0
                        self.root_emb = policy.gnn.embed(*graph_tensors(graph, device))
                        t0 = time.perf_counter()
                        self.inference_s += t0 - t1
                    rows = [self.var_row.get(v.getIndex(), -1) for v in cands]
                    feats = torch.from_numpy(node_features(self.model, cands, sols, fracs)).to(device)
                    t1 = time.perf_counter()
                    idx = torch.tensor(rows, device=device)
                    emb = self.root_emb[idx.clamp_min(0)] * (idx >= 0).unsqueeze(-1)
                    logits = policy.score(emb, feats)
                best = int(torch.argmax(logits))
                t2 = time.perf_counter()
            self.feature_s += t1 - t0
            self.inference_s += t2 - t1
            self.model.branchVar(cands[best])
            return {"result": SCIP_RESULT.BRANCHED}

        def stats(self) -> dict[str, Any]:
            return {"policy": policy.kind, "branch_calls": self.calls, "feature_s": self.feature_s,
                    "inference_s": self.inference_s}

    return LearnedBranching


def cross_entropy_topk(logits: torch.Tensor, batch: torch.Tensor, target: torch.Tensor,
                       best: torch.Tensor | None = None,
                       ks: tuple[int, ...] = (1, 5, 10)) -> tuple[torch.Tensor, dict[int, float]]:
    """Cross-entropy over each sample's candidates on the expert's choice, and top-k accuracy.

    ``logits`` and ``batch`` are per candidate (batch = sample id); ``target`` the position of the
    expert's choice in each sample's candidate list (concatenated order). ``best`` (per candidate)
    marks the candidates whose strong-branching score ties the best one: a top k holding any of them
    counts, as Gasse et al. count accuracy; without it only the expert's choice counts.
    """
    from torch_geometric.utils import scatter, softmax

    n = int(batch.max()) + 1 if len(batch) else 0
    logp = torch.log(softmax(logits, batch, num_nodes=len(logits)).clamp_min(1e-30))
    starts = torch.zeros(n, dtype=torch.long, device=logits.device)
    counts = torch.bincount(batch, minlength=n)
    starts[1:] = torch.cumsum(counts, 0)[:-1]
    loss = -logp[starts + target].mean()
    acc = {}
    with torch.no_grad():  # rank of each candidate in its sample: by logit, ties to the earlier (as argmax)
        by_logit = torch.sort(-logits, stable=True).indices
        perm = by_logit[torch.sort(batch[by_logit], stable=True).indices]
        rank = torch.empty_like(batch)
        rank[perm] = torch.arange(len(perm), device=logits.device) - starts[batch[perm]]
        if best is None:
            first = rank[starts + target]
        else:  # the best-ranked of the tied best candidates (the expert's choice is always one)
            masked = torch.where(best.bool(), rank, torch.full_like(rank, len(rank)))
            first = scatter(masked, batch, dim=0, dim_size=n, reduce="min")
        for k in ks:
            acc[k] = float((first < k).float().mean())
    return loss, acc


def tied_best(scores: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Which candidates' strong-branching scores tie the best finite one (within ``rtol``, relative)."""
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros(len(scores), dtype=bool)
    top = scores[finite].max()
    return finite & (scores >= top - rtol * max(1.0, abs(top)))


def numpy_graph(arrays: dict[str, np.ndarray]) -> Graph:
    return Graph(arrays["cons"], arrays["edge_index"], arrays["edge_attr"], arrays["var"])
