"""HDPO policies: a vanilla MLP, a symmetry-aware net (one shared store net plus a context) and a GNN
over the network graph (torch-geometric message passing). Each maps the state to a non-negative
request per edge (softplus, scaled by the mean demand below the edge's destination); the simulator
turns requests into feasible shipments (proportional allocation when a source is short).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.inventory.problem import InventoryInstance
from opsrl.inventory.simulator import Network, State
from opsrl.weights import shipped

KINDS = ("mlp", "symmetric", "gnn")
ONE = 0.5413248546129181  # softplus^-1(1): requests start at the mean demand below each edge


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of a policy; stored in every checkpoint's sidecar."""

    kind: str = "mlp"
    hidden: int = 64
    layers: int = 2
    rounds: int = 2  # message-passing rounds (gnn)
    context: int = 16  # context width (symmetric)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"--policy {self.kind}: expected one of {', '.join(KINDS)}")


def _mlp(sizes: list[int]) -> nn.Sequential:
    mods: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [nn.Linear(a, b), nn.ELU()]
    return nn.Sequential(*mods[:-1])


def node_features(net: Network, state: State) -> torch.Tensor:
    """(B, N, Lmax + 3): on hand, arrivals by slot, local and echelon position, all over the demand below."""
    scale = net.down_mean.clamp_min(1e-6)
    pos = state.position()
    ech = net.echelon_position(state)
    feats = torch.cat([state.onhand[..., None], state.pipe, pos[..., None], ech[..., None]], -1)
    return feats / scale[:, None]


def static_features(net: Network) -> torch.Tensor:
    """(N, 8): holding, penalty, log mean demand below, cv, role one-hot, mean lead time in (cached on the net)."""
    cached = getattr(net, "_static", None)
    if cached is None:
        cached = net._static = _static(net)
    return cached


def _static(net: Network) -> torch.Tensor:
    N, n = net.N, net.n
    inst = net.inst
    pen = torch.zeros(N, dtype=net.dtype, device=net.device)
    pen[:n] = net.penalty
    cv = torch.zeros(N, dtype=net.dtype, device=net.device)
    if inst.demand.std:
        cv[:n] = torch.tensor(inst.demand.std, dtype=net.dtype, device=net.device) / net.mean.clamp_min(1e-6)
    roles = torch.tensor([[loc.role == r for r in ("store", "warehouse", "transship")] for loc in inst.locations],
                         dtype=net.dtype, device=net.device)
    lead = (net.into * net.lead[:, None]).sum(0) / net.into.sum(0).clamp_min(1)
    return torch.cat([net.holding[:, None], pen[:, None] / 10, net.down_mean.clamp_min(1e-6).log()[:, None],
                      cv[:, None], roles, lead[:, None] / 4], 1)


class InventoryPolicy(nn.Module):
    """Base: turns raw edge scores into requests and wraps itself as a simulator policy function."""

    config: PolicyConfig

    def scores(self, net: Network, state: State) -> torch.Tensor:
        """Raw (batch, edges) scores; each architecture (MLP, symmetric, GNN) defines its own."""
        raise NotImplementedError

    def forward(self, net: Network, state: State) -> torch.Tensor:
        return F.softplus(self.scores(net, state)) * net.edge_scale

    def as_fn(self, net: Network) -> Any:
        self.eval()
        return lambda state, t: self(net, state)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class MLPPolicy(InventoryPolicy):
    """Vanilla MLP: the whole state flattened in, one score per edge out."""

    def __init__(self, config: PolicyConfig, net: Network):
        super().__init__()
        self.config = config
        dim = net.N * (net.lmax + 3)
        self.body = _mlp([dim] + [config.hidden] * config.layers + [net.E])
        nn.init.constant_(self.body[-1].bias, ONE)
        nn.init.normal_(self.body[-1].weight, std=0.01)

    def scores(self, net: Network, state: State) -> torch.Tensor:
        return self.body(node_features(net, state).flatten(1))


class SymmetricPolicy(InventoryPolicy):
    """Symmetry-aware: a context net reads the whole state; one shared store net maps (store state, store
    features, context) to the store's requests; the context net scores the upstream edges."""

    def __init__(self, config: PolicyConfig, net: Network):
        super().__init__()
        self.config = config
        f = net.lmax + 3
        self.context = _mlp([net.N * f] + [config.hidden] * config.layers + [config.context])
        self.store = _mlp([f + 8 + config.context] + [config.hidden] * config.layers + [1])
        self.upstream = nn.Linear(config.context, net.E)
        for head in (self.store[-1], self.upstream):
            nn.init.constant_(head.bias, ONE)
            nn.init.normal_(head.weight, std=0.01)

    def scores(self, net: Network, state: State) -> torch.Tensor:
        x = node_features(net, state)
        ctx = F.elu(self.context(x.flatten(1)))
        static = static_features(net)
        B = x.shape[0]
        per_store = torch.cat([x[:, :net.n], static[:net.n].expand(B, -1, -1),
                               ctx[:, None].expand(-1, net.n, -1)], -1)
        store_score = self.store(per_store)[..., 0]  # (B, n)
        up = self.upstream(ctx)  # (B, E)
        into_store = net.into[:, :net.n]  # (E, n)
        is_store_edge = into_store.sum(1)
        return store_score @ into_store.T + up * (1 - is_store_edge)


class GNNPolicy(InventoryPolicy):
    """GNN: node and edge encoders, message passing in both directions along supply edges with
    residuals, a score per edge from its two end nodes. The supplier is a node of its own."""

    def __init__(self, config: PolicyConfig, net: Network):
        super().__init__()
        from torch_geometric.nn import MessagePassing

        self.config = config
        d = config.hidden
        f = net.lmax + 3 + 8

        class Round(MessagePassing):
            """One round: message elu(A x_i + B x_j + e) -> linear, mean over neighbours, residual update."""

            def __init__(self) -> None:
                super().__init__(aggr="mean", node_dim=1)
                self.a = nn.Linear(d, d)
                self.b = nn.Linear(d, d, bias=False)
                self.msg = nn.Linear(d, d)
                self.upd = _mlp([2 * d, d, d])

            def forward(self, x: torch.Tensor, edge_index: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
                agg = self.propagate(edge_index, a=self.a(x), b=self.b(x), e=e)
                return x + self.upd(torch.cat([x, agg], -1))

            def message(self, a_i: torch.Tensor, b_j: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
                return self.msg(F.elu(a_i + b_j + e))

        self.node_enc = _mlp([f, d, d])
        self.edge_enc = _mlp([3, d, d])
        self.rounds = nn.ModuleList(Round() for _ in range(config.rounds))
        self.head_src = nn.Linear(d, d)
        self.head_dst = nn.Linear(d, d, bias=False)
        self.head_out = nn.Linear(d, 1)
        nn.init.constant_(self.head_out.bias, ONE)
        nn.init.normal_(self.head_out.weight, std=0.01)

    def _graph(self, net: Network) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cached = getattr(net, "_graph", None)
        if cached is None:
            cached = net._graph = self._make_graph(net)
        return cached

    def _make_graph(self, net: Network) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.where(net.src < 0, torch.full_like(net.src, net.N), net.src)
        fwd = torch.stack([src, net.dst])
        edge_index = torch.cat([fwd, fwd.flip(0)], 1)  # both directions
        lead = net.lead[:, None] / 4
        e = torch.cat([torch.cat([lead, torch.ones_like(lead), torch.zeros_like(lead)], 1),
                       torch.cat([lead, torch.zeros_like(lead), torch.ones_like(lead)], 1)], 0)
        return edge_index, e, src

    def scores(self, net: Network, state: State) -> torch.Tensor:
        B = state.onhand.shape[0]
        x = torch.cat([node_features(net, state), static_features(net).expand(B, -1, -1)], -1)
        supplier = torch.zeros(B, 1, x.shape[-1], dtype=x.dtype, device=x.device)
        h = self.node_enc(torch.cat([x, supplier], 1))
        edge_index, e, src = self._graph(net)
        e = self.edge_enc(e)
        for rnd in self.rounds:
            h = rnd(h, edge_index, e)
        z = F.elu(self.head_src(h)[:, src] + self.head_dst(h)[:, net.dst] + e[:net.E])
        return self.head_out(z)[..., 0]


CLASSES = {"mlp": MLPPolicy, "symmetric": SymmetricPolicy, "gnn": GNNPolicy}


def make_policy(config: PolicyConfig, net: Network) -> InventoryPolicy:
    """A fresh policy of ``config.kind`` shaped for ``net``."""
    return CLASSES[config.kind](config, net).to(device=net.device, dtype=net.dtype)


def instance_key(inst: InventoryInstance) -> str:
    """File-name key of an instance: its setting and parameters (the shipped checkpoint's name)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", inst.name).strip("_")


def shipped_checkpoint(inst: InventoryInstance) -> Path:
    """Where the shipped checkpoint for ``inst`` lives (it may not exist)."""
    return shipped(f"inventory_{instance_key(inst)}")


def same_network(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("locations", "edges", "demand", "lost_sales")
    return all(_norm(a.get(k)) == _norm(b.get(k)) for k in keys)


def _norm(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x, default=list))


def load_policy(inst: InventoryInstance, checkpoint: str | Path | None = None,
                device: str = "cpu") -> tuple[InventoryPolicy, dict[str, Any], Path]:
    """The policy in ``checkpoint`` (None: the shipped one for ``inst``), checked against the instance."""
    from opsrl.core.checkpoint import load_checkpoint

    path = shipped_checkpoint(inst) if checkpoint in (None, "") else Path(checkpoint)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        what = f"no shipped hdpo checkpoint for instance {inst.name}" if checkpoint in (None, "") else "checkpoint not found"
        sets = "".join(f" --set {k}={v:g}" if isinstance(v, float) else f" --set {k}={v}" for k, v in inst.params.items())
        raise OpsrlError(f"{path.name}: {what}; train one with `opsrl train --problem inventory --setting "
                         f"{inst.setting or 'FILE'}{sets} --out CKPT` and pass --param checkpoint=CKPT")
    state, meta = load_checkpoint(path, device)
    if meta.get("kind") != "hdpo":
        raise OpsrlError(f"{path}: not an inventory (hdpo) checkpoint")
    if not same_network(meta.get("setting", {}), inst.to_dict()):
        raise OpsrlError(f"{path}: trained for setting {meta.get('setting', {}).get('name')}, "
                         f"not for {inst.name} (network, costs or demand differ)")
    config = PolicyConfig(**meta["architecture"])
    net = Network(inst, device)
    policy = make_policy(config, net)
    policy.load_state_dict(state)
    policy.eval()
    return policy, meta, path


def config_dict(config: PolicyConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
