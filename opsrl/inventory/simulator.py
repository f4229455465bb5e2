"""The one inventory simulator: torch, batched over scenarios, differentiable end to end.

Timing (HDPO's convention): at the start of period t each location sees its on-hand stock (arrivals
included); orders are placed on every edge; an internal source ships out of its current on-hand,
scaled down proportionally when the requests exceed it; a shipment placed in t is usable in t + L.
Stores then meet demand and pay p (d - x)^+ + h (x - d)^+ on their start-of-period on-hand x (lost
sales clip at 0, backlog goes negative); upstream locations pay holding on what they keep.
In-transit stock costs nothing. No numpy in the hot loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from opsrl.inventory.problem import InventoryInstance, read_history, scenarios

PolicyFn = Callable[["State", int], torch.Tensor]


def set_threads() -> None:
    """Few threads: the CPU is shared (OPSRL_THREADS overrides, default 1)."""
    torch.set_num_threads(int(os.environ.get("OPSRL_THREADS", "1")))


class State:
    """On-hand stock (B, N) and future arrivals (B, N, Lmax): slot k arrives at the start of period t + 1 + k."""

    __slots__ = ("onhand", "pipe")

    def __init__(self, onhand: torch.Tensor, pipe: torch.Tensor):
        self.onhand = onhand
        self.pipe = pipe

    def position(self) -> torch.Tensor:
        """Local inventory position: on hand plus in transit, per location."""
        return self.onhand + self.pipe.sum(-1)


class Network:
    """The tensors of a setting: edges, costs, incidence and arrival matrices, echelon membership."""

    _static: torch.Tensor | None = None  # policy caches (static node features, graph tensors)
    _graph: tuple[torch.Tensor, ...] | None = None

    def __init__(self, inst: InventoryInstance, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.inst = inst
        self.device = torch.device(device)
        self.dtype = dtype
        n, N, E = inst.n_stores, inst.n_locations, len(inst.edges)
        self.n, self.N, self.E = n, N, E
        self.lmax = inst.max_lead
        kw = dict(device=self.device, dtype=dtype)
        src = [e.src for e in inst.edges]
        dst = [e.dst for e in inst.edges]
        self.src = torch.tensor(src, device=self.device)
        self.dst = torch.tensor(dst, device=self.device)
        self.lead = torch.tensor([e.lead_time for e in inst.edges], **kw)
        self.holding = torch.tensor([loc.holding for loc in inst.locations], **kw)
        self.penalty = torch.tensor([loc.penalty for loc in inst.locations[:n]], **kw)
        self.lost = inst.lost_sales
        out = torch.zeros(E, N, **kw)
        arrive = torch.zeros(E, N, self.lmax, **kw)
        into = torch.zeros(E, N, **kw)
        for k, e in enumerate(inst.edges):
            if e.src >= 0:
                out[k, e.src] = 1.0
            arrive[k, e.dst, e.lead_time - 1] = 1.0
            into[k, e.dst] = 1.0
        self.out = out  # (E, N): which location an edge ships out of (none for the supplier)
        self.external = (self.src < 0).to(dtype)
        self.arrive = arrive.reshape(E, N * self.lmax)
        self.into = into  # (E, N): which location an edge feeds
        self.share = into / into.sum(0, keepdim=True).clamp_min(1.0)  # split a location's need over its edges
        self.ships_all = torch.tensor([loc.role == "transship" for loc in inst.locations], device=self.device)
        # echelon[i, j] = 1 when j is i or lies downstream of i
        ech = np.eye(N)
        children = {i: [e.dst for e in inst.edges if e.src == i] for i in range(N)}
        for i in range(N):
            stack = list(children[i])
            while stack:
                j = stack.pop()
                if ech[i, j] == 0:
                    ech[i, j] = 1.0
                    stack.extend(children[j])
        self.echelon = torch.tensor(ech, **kw)
        self.mean = torch.tensor(demand_means(inst), **kw)
        self.down_mean = self.echelon[:, :n] @ self.mean  # mean demand below each location (N,)
        self.edge_scale = self.down_mean[self.dst] / self.into.sum(0)[self.dst]
        self.internal = bool((self.src >= 0).any())  # False: every edge comes from the supplier (no allocation)
        self.flat = N == 1  # one location: echelon position is the local one

    def initial(self, batch: int) -> State:
        """Start state: each location holds (lead time in + 1) periods of the demand below it, and every
        pipeline slot one period (near the usual order-up-to levels, so warm-up is short)."""
        lead_in = (self.into * self.lead[:, None]).sum(0) / self.into.sum(0).clamp_min(1)
        onhand = (self.down_mean * (lead_in + 1)).expand(batch, self.N).clone()
        slots = torch.arange(self.lmax, device=self.device, dtype=self.dtype)
        fill = torch.zeros(self.N, self.lmax, device=self.device, dtype=self.dtype)
        for k in range(self.E):
            fill[self.dst[k]] += (slots < self.lead[k] - 1).to(self.dtype) * self.edge_scale[k]
        return State(onhand, fill.expand(batch, self.N, self.lmax).clone())

    def echelon_position(self, state: State) -> torch.Tensor:
        """Echelon inventory position per location: its own and everything downstream, stock and transit."""
        pos = state.position()
        return pos if self.flat else pos @ self.echelon.T

    def step(self, state: State, requests: torch.Tensor, demand: torch.Tensor) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One period: allocate, ship, meet demand, pay; returns (cost per scenario, next state, shipments)."""
        n = self.n
        onhand = state.onhand
        x0 = onhand[:, :n]
        short = torch.relu(demand - x0)
        left = torch.relu(x0 - demand)
        cost = (self.penalty * short + self.holding[:n] * left).sum(-1)
        stores = left if self.lost else x0 - demand
        if self.internal:
            need = requests @ self.out  # (B, N) requested out of each location
            avail = onhand.clamp_min(0.0)
            ratio = avail / need.clamp_min(1e-6)
            ratio = torch.where(self.ships_all, avail / need.clamp_min(1e-3), ratio.clamp(max=1.0))
            ship = requests * (ratio @ self.out.T + self.external)
            shipped = ship @ self.out
            kept = torch.relu(onhand[:, n:] - shipped[:, n:])
            cost = cost + (self.holding[n:] * kept).sum(-1)
            stores = torch.cat([stores, kept], 1)
        else:
            ship = requests
            if self.N > n:
                kept = onhand[:, n:]
                cost = cost + (self.holding[n:] * kept).sum(-1)
                stores = torch.cat([stores, kept], 1)
        pipe = state.pipe + (ship @ self.arrive).view(-1, self.N, self.lmax)
        onhand = stores + pipe[:, :, 0]
        pipe = torch.cat([pipe[:, :, 1:], torch.zeros_like(pipe[:, :, :1])], 2)
        return cost, State(onhand, pipe), ship


def demand_means(inst: InventoryInstance) -> np.ndarray:
    """Mean demand per store (the history table's column means for a history setting)."""
    if inst.demand.kind == "history":
        return read_history(inst.demand.path, inst.n_stores).mean(0)
    return np.asarray(inst.demand.mean, dtype=float)


def rollout(net: Network, policy: PolicyFn, demand: torch.Tensor, *, round_orders: bool = False,
            record: bool = False, state: State | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``policy`` over demand (B, T, n): cost per period per store (B, T) and, if asked, orders (B, T, E)."""
    B, T, _ = demand.shape
    state = net.initial(B) if state is None else state
    costs, orders = [], []
    for t in range(T):
        req = policy(state, t)
        if round_orders:
            req = torch.round(req)
        if record:
            orders.append(req.detach())
        cost, state, _ = net.step(state, req, demand[:, t])
        costs.append(cost)
    out = torch.stack(costs, 1) / net.n
    return out, (torch.stack(orders, 1) if record else None)


def replay_cost(inst: InventoryInstance, orders: np.ndarray, chunk: int = 4096) -> float:
    """Mean cost per period per store after the test warm-up when ``orders`` are placed on the test scenarios."""
    set_threads()
    net = Network(inst, "cpu", torch.float64)
    demand = scenarios(inst, "test")
    total, count = 0.0, 0
    with torch.no_grad():
        for lo in range(0, demand.shape[0], chunk):
            d = torch.as_tensor(demand[lo:lo + chunk], dtype=torch.float64)
            o = torch.as_tensor(orders[lo:lo + chunk], dtype=torch.float64)
            costs, _ = rollout(net, lambda s, t: o[:, t], d)
            kept = costs[:, inst.test_warmup:]
            total += float(kept.sum())
            count += kept.numel()
    return total / count


def run_policy(inst: InventoryInstance, policy: PolicyFn, split: str = "test", *, device: str = "cpu",
               chunk: int = 4096, count: int | None = None, periods: int | None = None,
               record: bool = True) -> tuple[float, np.ndarray | None]:
    """Run a policy on a scenario set (integer orders where demand is discrete): mean cost after warm-up, orders."""
    net = Network(inst, device)
    demand = scenarios(inst, split, count, periods)
    warm = inst.test_warmup if split == "test" else inst.warmup
    total, n_cost, orders = 0.0, 0, []
    with torch.no_grad():
        for lo in range(0, demand.shape[0], chunk):
            d = torch.as_tensor(demand[lo:lo + chunk], device=net.device)
            costs, o = rollout(net, policy, d, round_orders=inst.demand.discrete, record=record)
            total += float(costs[:, warm:].sum())
            n_cost += costs[:, warm:].numel()
            if record:
                orders.append(o.clamp_min(0).cpu().numpy())
    return total / n_cost, (np.concatenate(orders) if record else None)


def stats(inst: InventoryInstance) -> dict[str, Any]:
    """Sizes of a setting, for solver stats."""
    return {"stores": inst.n_stores, "locations": inst.n_locations, "edges": len(inst.edges)}
