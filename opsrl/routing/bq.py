"""BQ-NCO sub-problems, shared by decoding and training, vectorised over a batch of same-size instances.

A sub-problem is what remains to be decided: for tsp, cvrp and op the tokens are the *origin* (the
current node), the remaining nodes, and the *destination* (the start city for tsp, the depot for
cvrp and op), in that order; for kp they are the remaining items. ``SubProblem.nodes`` (B, T) holds
the instances' own node (item) indices of the tokens, ``remaining`` (B,) the resource left (cvrp
capacity, op length budget, kp capacity; all scaled as below). Taking an action makes the chosen
node the new origin and drops it from the tokens (kp: drops the item), so every row keeps the same
number of tokens: rows that are finished (op, kp) drop a filler token instead.

Token features (ANCHORS.md): tsp (x, y); cvrp (x, y, demand / capacity, remaining / capacity); op
(x, y, prize / max prize, remaining budget); kp (value, weight, remaining capacity). The origin and
destination tokens carry no demand or prize (nothing left to collect there).

Normalisation, so that user files look like the generated training data: coordinates are shifted
to start at 0 and divided by the larger of the x and y ranges (the unit square); distances and the
op budget are divided by the same factor. kp values are divided by the largest value and weights
and the capacity by the largest weight (the generator's items are 1..999, so this is its /1000
convention to within 1 %). Solutions are node indices, so they need no converting back: costs always
come from ``evaluate`` on the instance as given. Resource checks run in float64 with a tolerance of
1e-12 (in scaled units) so that exact fits are kept and no solution exceeds a limit by more than
``evaluate`` tolerates.

Actions are (token, mode) with mode 0 for every problem but cvrp, whose mode 1 means "via the
depot": the vehicle returns to the depot, reloads, then serves the node. Masks: the origin and the
destination are never chosen, except that in op choosing the destination ends the tour, offered
only once no node fits (with positive prizes, ending while one still fits always loses prize);
cvrp's direct action needs demand <= remaining, via-depot needs demand <= capacity, and at the
very start (origin = depot) only via-depot is offered (the label files start every route that way);
op masks nodes with d(origin, i) + d(i, depot) > remaining budget; kp masks items heavier than the
remaining capacity, and a kp row is finished when no item fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from opsrl.core.errors import OpsrlError

TOL = 1e-12  # slack on resource checks, in scaled units (float64)
END = -1  # node recorded for an op step that ends the tour


@dataclass
class Static:
    """The normalised instance data of a batch (float64 tensors, row b = instance b)."""

    problem: str
    coords: torch.Tensor | None = None  # (B, M, 2) unit square; cvrp/op node 0 is the depot
    demand: torch.Tensor | None = None  # cvrp (B, M): demand / capacity
    prize: torch.Tensor | None = None  # op (B, M): prize / max prize
    dist: torch.Tensor | None = None  # op (B, M, M): the instances' own distances, scaled; None: Euclidean
    values: torch.Tensor | None = None  # kp (B, N): value / max value
    weights: torch.Tensor | None = None  # kp (B, N): weight / max weight
    start: torch.Tensor | None = None  # (B,): the resource at the start (cvrp 1, op budget, kp capacity)

    def _map(self, fn: Any) -> Static:
        return dataclasses.replace(self, **{f.name: fn(getattr(self, f.name))
                                            for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), torch.Tensor)})

    def take(self, rows: torch.Tensor) -> Static:
        """The rows ``rows`` of the batch (an index tensor)."""
        return self._map(lambda t: t[rows.to(t.device)])

    def repeat(self, k: int) -> Static:
        """Every row repeated ``k`` times in place (row b*k + j is instance b), for beams and samples."""
        return self._map(lambda t: t.repeat_interleave(k, dim=0))

    def to(self, device: Any) -> Static:
        return self._map(lambda t: t.to(device))

    @property
    def batch(self) -> int:
        return len(self.start)

    @property
    def device(self) -> torch.device:
        return self.start.device


@dataclass
class SubProblem:
    """The remaining sub-problem of every row: token node indices, resource left, and whether at the start."""

    nodes: torch.Tensor  # (B, T) long
    remaining: torch.Tensor  # (B,) float64
    at_start: torch.Tensor  # (B,) bool: cvrp's origin is the depot at the start (only via-depot is offered)

    def take(self, rows: torch.Tensor) -> SubProblem:
        return SubProblem(self.nodes[rows], self.remaining[rows], self.at_start[rows])


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[b, idx[b, t], ...]`` for x (B, M, ...) and idx (B, T): per-row gather along dim 1."""
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[rows, idx]


# ---------------------------------------------------------------- normalisation

def _unit_square(coords: np.ndarray) -> tuple[np.ndarray, float]:
    """Coordinates shifted to 0 and divided by the larger range, and that factor."""
    lo = coords.min(axis=0)
    scale = float(np.max(coords.max(axis=0) - lo))
    scale = scale if scale > 0 else 1.0
    return (coords - lo) / scale, scale


def _positive_max(x: np.ndarray) -> float:
    m = float(np.max(x)) if len(x) else 0.0
    return m if m > 0 else 1.0


def normalised_arrays(problem: str, inst: Any) -> dict[str, Any]:
    """One instance's normalised fields as numpy arrays (the Static fields)."""
    if problem == "kp":
        wmax = _positive_max(np.asarray(inst.weights, float))
        return {"values": np.asarray(inst.values, float) / _positive_max(np.asarray(inst.values, float)),
                "weights": np.asarray(inst.weights, float) / wmax, "start": float(inst.capacity) / wmax}
    if inst.edge_weight_type == "EXPLICIT":
        raise OpsrlError(f"instance {inst.name}: the bq policy needs node coordinates; "
                         "EDGE_WEIGHT_TYPE EXPLICIT has none")
    coords, scale = _unit_square(np.asarray(inst.coords, float))
    out: dict[str, Any] = {"coords": coords, "start": 0.0}
    if problem == "cvrp":
        out.update(demand=np.asarray(inst.demands, float) / float(inst.capacity), start=1.0)
    elif problem == "op":
        prizes = np.asarray(inst.prizes, float)
        out.update(prize=prizes / _positive_max(prizes), start=float(inst.max_length) / scale)
        if inst.edge_weight_type != "EXACT":  # rounded conventions: mask with the instance's own distances
            out["dist"] = np.asarray(inst.distances, float) / scale
    return out


def static_from_instances(problem: str, instances: list[Any], device: Any = "cpu") -> Static:
    """The normalised Static of same-size instances (see the module docstring for the scaling)."""
    if len({inst.size for inst in instances}) != 1:
        raise OpsrlError("a batch of sub-problems needs instances of one size")
    rows = [normalised_arrays(problem, inst) for inst in instances]
    if problem == "op" and any("dist" in r for r in rows):
        for r, inst in zip(rows, instances):
            if "dist" not in r:
                r["dist"] = np.asarray(inst.distances, float) / (_unit_square(np.asarray(inst.coords, float))[1])
    fields = {key: torch.as_tensor(np.stack([r[key] for r in rows]), dtype=torch.float64, device=device)
              for key in rows[0]}
    return Static(problem=problem, **fields)


# ---------------------------------------------------------------- per-problem rules

class Spec:
    """The rules of one problem's sub-problems: start, features, mask and resource use."""

    problem = ""
    logits = 1  # actions per token
    has_ends = True  # tokens 0 and T-1 are the origin and the destination
    filler = 1  # token a finished row drops to keep the batch rectangular
    min_tokens = 2  # tokens that always stay (origin and destination)

    def initial(self, static: Static) -> SubProblem:
        """The whole instance as a sub-problem: origin and destination node 0, every other node remaining."""
        b, m = static.coords.shape[:2]
        inner = torch.arange(1, m, device=static.device)
        ends = torch.zeros(1, dtype=torch.long, device=static.device)
        nodes = torch.cat([ends, inner, ends]).expand(b, -1).clone()
        return SubProblem(nodes, static.start.clone(), torch.zeros(b, dtype=torch.bool, device=static.device))

    def interior(self, sub: SubProblem) -> torch.Tensor:
        """(B, T) True at the tokens that are neither origin nor destination."""
        inner = torch.ones_like(sub.nodes, dtype=torch.bool)
        if self.has_ends:
            inner[:, 0] = False
            inner[:, -1] = False
        return inner

    def distances(self, static: Static, origin: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """Scaled distances (B, T) from each row's ``origin`` node (B,) to its ``nodes`` (B, T)."""
        rows = torch.arange(len(origin), device=origin.device)
        if static.dist is not None:
            return static.dist[rows, origin].gather(1, nodes)
        here = static.coords[rows, origin][:, None, :]
        return torch.linalg.vector_norm(gather_rows(static.coords, nodes) - here, dim=-1)

    def features(self, static: Static, sub: SubProblem) -> torch.Tensor:
        """Token features (B, T, dim_in), float32."""
        return gather_rows(static.coords, sub.nodes).float()

    def mask(self, static: Static, sub: SubProblem) -> torch.Tensor:
        """Allowed actions (B, T, logits) bool."""
        return self.interior(sub)[..., None]

    def consume(self, static: Static, sub: SubProblem, chosen: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        """The resource left after moving to ``chosen`` (B,) by ``mode`` (B,)."""
        return sub.remaining

    def ends(self, sub: SubProblem, pos: torch.Tensor) -> torch.Tensor:
        """(B,) True where the action at token ``pos`` ends the row's episode (op: the destination)."""
        return torch.zeros_like(pos, dtype=torch.bool)

    def with_resource(self, static: Static, sub: SubProblem, extra: torch.Tensor) -> torch.Tensor:
        """Features (B, T, dim_in) made of the coordinates, ``extra`` (B, T) and the remaining resource."""
        xy = gather_rows(static.coords, sub.nodes)
        rem = sub.remaining[:, None, None].expand(-1, xy.shape[1], 1)
        return torch.cat([xy, (extra * self.interior(sub))[..., None], rem], dim=-1).float()


class TSPSpec(Spec):
    problem = "tsp"


class CVRPSpec(Spec):
    problem = "cvrp"
    logits = 2

    def initial(self, static: Static) -> SubProblem:
        sub = super().initial(static)
        sub.at_start[:] = True
        return sub

    def features(self, static: Static, sub: SubProblem) -> torch.Tensor:
        return self.with_resource(static, sub, gather_rows(static.demand, sub.nodes))

    def mask(self, static: Static, sub: SubProblem) -> torch.Tensor:
        inner = self.interior(sub)
        demand = gather_rows(static.demand, sub.nodes)
        direct = inner & (demand <= sub.remaining[:, None] + TOL) & ~sub.at_start[:, None]
        via = inner & (demand <= 1.0 + TOL)
        return torch.stack([direct, via], dim=-1)

    def consume(self, static: Static, sub: SubProblem, chosen: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        d = static.demand.gather(1, chosen[:, None]).squeeze(1)
        return torch.where(mode == 1, 1.0 - d, sub.remaining - d)


class OPSpec(Spec):
    problem = "op"

    def features(self, static: Static, sub: SubProblem) -> torch.Tensor:
        return self.with_resource(static, sub, gather_rows(static.prize, sub.nodes))

    def mask(self, static: Static, sub: SubProblem) -> torch.Tensor:
        inner = self.interior(sub)
        there = self.distances(static, sub.nodes[:, 0], sub.nodes)
        back = self.distances(static, sub.nodes[:, -1], sub.nodes)
        allowed = inner & (there + back <= sub.remaining[:, None] + TOL)
        allowed[:, -1] = ~allowed[:, 1:-1].any(1)  # end the tour only when no node fits any more
        return allowed[..., None]

    def consume(self, static: Static, sub: SubProblem, chosen: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        return sub.remaining - self.distances(static, sub.nodes[:, 0], chosen[:, None]).squeeze(1)

    def ends(self, sub: SubProblem, pos: torch.Tensor) -> torch.Tensor:
        return pos == sub.nodes.shape[1] - 1


class KPSpec(Spec):
    problem = "kp"
    has_ends = False
    filler = 0
    min_tokens = 0

    def initial(self, static: Static) -> SubProblem:
        b, n = static.values.shape
        nodes = torch.arange(n, device=static.device).expand(b, -1).clone()
        return SubProblem(nodes, static.start.clone(), torch.zeros(b, dtype=torch.bool, device=static.device))

    def features(self, static: Static, sub: SubProblem) -> torch.Tensor:
        v, w = gather_rows(static.values, sub.nodes), gather_rows(static.weights, sub.nodes)
        return torch.stack([v, w, sub.remaining[:, None].expand_as(v)], dim=-1).float()

    def mask(self, static: Static, sub: SubProblem) -> torch.Tensor:
        return (gather_rows(static.weights, sub.nodes) <= sub.remaining[:, None] + TOL)[..., None]

    def consume(self, static: Static, sub: SubProblem, chosen: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        return sub.remaining - static.weights.gather(1, chosen[:, None]).squeeze(1)


SPECS: dict[str, Spec] = {s.problem: s for s in (TSPSpec(), CVRPSpec(), OPSpec(), KPSpec())}


# ---------------------------------------------------------------- actions, views, solutions

def step(spec: Spec, static: Static, sub: SubProblem, pos: torch.Tensor, mode: torch.Tensor,
         active: torch.Tensor) -> tuple[SubProblem, torch.Tensor, torch.Tensor]:
    """Apply the action (token ``pos``, ``mode``) in the ``active`` rows; inactive rows only drop a filler token.

    Returns the new sub-problem, the node visited per row (``END`` where the row did not visit one)
    and whether the action ended the row's episode (op's destination).
    """
    b, t = sub.nodes.shape
    rows = torch.arange(b, device=pos.device)
    chosen = sub.nodes[rows, pos]
    ends = active & spec.ends(sub, pos)
    moves = active & ~ends
    remaining = torch.where(moves, spec.consume(static, sub, chosen, mode), sub.remaining)
    nodes = sub.nodes
    if spec.has_ends:
        nodes = nodes.clone()
        nodes[:, 0] = torch.where(moves, chosen, nodes[:, 0])
    if t > spec.min_tokens:
        keep = torch.ones_like(nodes, dtype=torch.bool)
        keep[rows, torch.where(moves, pos, torch.full_like(pos, spec.filler))] = False
        nodes = nodes[keep].view(b, t - 1)
    visited = torch.where(moves, chosen, torch.full_like(chosen, END))
    return SubProblem(nodes, remaining, sub.at_start & ~moves), visited, ends


def knn_positions(spec: Spec, static: Static, sub: SubProblem, k: int) -> torch.Tensor | None:
    """Token positions (B, k + 2) of the origin, the ``k`` remaining nodes nearest it, and the destination.

    None when no restriction applies (``k`` <= 0, kp, or no more than ``k`` nodes remain).
    """
    t = sub.nodes.shape[1]
    if k <= 0 or not spec.has_ends or t - 2 <= k:
        return None
    d = spec.distances(static, sub.nodes[:, 0], sub.nodes)
    d[:, 0] = torch.inf
    d[:, -1] = torch.inf
    near = d.topk(k, dim=1, largest=False).indices.sort(dim=1).values
    first = torch.zeros_like(near[:, :1])
    return torch.cat([first, near, first + t - 1], dim=1)


def view(sub: SubProblem, positions: torch.Tensor | None) -> SubProblem:
    """The sub-problem restricted to the tokens at ``positions`` (all of them when None)."""
    if positions is None:
        return sub
    return SubProblem(sub.nodes.gather(1, positions), sub.remaining, sub.at_start)


def to_solution(problem: str, visited: np.ndarray, modes: np.ndarray) -> Any:
    """A decoded row (visited nodes per step, ``END`` where none, and modes) in opsrl's solution format."""
    keep = visited != END
    nodes, modes = [int(v) for v in visited[keep]], [int(m) for m in modes[keep]]
    if problem == "tsp":
        return [0, *nodes]
    if problem == "cvrp":
        routes: list[list[int]] = []
        for node, mode in zip(nodes, modes):
            if mode == 1 or not routes:
                routes.append([])
            routes[-1].append(node)
        return routes
    if problem == "op":
        return nodes
    return sorted(nodes)


def to_actions(problem: str, solution: Any) -> tuple[list[int], list[int]]:
    """The actions (node, mode per step) that decode to ``solution``; op ends with the depot (node 0)."""
    if problem == "tsp":
        tour = [int(v) for v in solution]
        k = tour.index(0)
        nodes = tour[k + 1:] + tour[:k]
        return nodes, [0] * len(nodes)
    if problem == "cvrp":
        nodes, modes = [], []
        for route in solution:
            for j, v in enumerate(route):
                nodes.append(int(v))
                modes.append(1 if j == 0 else 0)
        return nodes, modes
    if problem == "op":
        nodes = [int(v) for v in solution] + [0]
        return nodes, [0] * len(nodes)
    nodes = [int(v) for v in solution]
    return nodes, [0] * len(nodes)
