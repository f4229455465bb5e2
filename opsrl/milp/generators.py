"""Seeded MILP instance generators of Gasse et al. (2019), written as CPLEX LP text.

Set cover (Balas and Ho), combinatorial auction (Leyton-Brown's arbitrary relationships),
capacitated facility location (Cornuejols et al.) and maximum independent set (Barabasi-Albert
graph, clique-partition formulation), with the easy / medium / hard sizes of the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# family -> level -> generator parameters (Gasse et al. 2019, Table 1 and appendix)
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "setcover": {"easy": {"nrows": 500}, "medium": {"nrows": 1000}, "hard": {"nrows": 2000}},
    "cauctions": {"easy": {"n_items": 100, "n_bids": 500}, "medium": {"n_items": 200, "n_bids": 1000},
                  "hard": {"n_items": 300, "n_bids": 1500}},
    "facilities": {"easy": {"n_customers": 100}, "medium": {"n_customers": 200}, "hard": {"n_customers": 400}},
    "indset": {"easy": {"n_nodes": 500}, "medium": {"n_nodes": 1000}, "hard": {"n_nodes": 1500}},
}


def rng_for(seed: int, index: int) -> np.random.Generator:
    """The random stream of instance ``index`` of seed ``seed`` (independent of every other index)."""
    return np.random.default_rng([int(seed), int(index)])


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def lp_text(sense: str, objective: dict[str, float], rows: list[tuple[str, dict[str, float], str, float]],
            binaries: list[str], bounds: dict[str, tuple[float, float]] | None = None,
            integers: list[str] | None = None) -> str:
    """A model in CPLEX LP format: ``rows`` are (name, {var: coef}, "<="|">="|"=", rhs)."""
    out = ["Maximize" if sense == "max" else "Minimize", " obj: " + _linear(objective), "Subject To"]
    for name, coefs, op, rhs in rows:
        out.append(f" {name}: {_linear(coefs)} {op} {_fmt(rhs)}")
    if bounds:
        out.append("Bounds")
        out.extend(f" {_fmt(lo)} <= {v} <= {_fmt(hi)}" for v, (lo, hi) in bounds.items())
    if binaries:
        out.append("Binary")
        out.extend(" " + " ".join(binaries[i:i + 20]) for i in range(0, len(binaries), 20))
    if integers:
        out.append("General")
        out.extend(" " + " ".join(integers[i:i + 20]) for i in range(0, len(integers), 20))
    out.append("End")
    return "\n".join(out) + "\n"


def _linear(coefs: dict[str, float]) -> str:
    terms = []
    for i, (v, c) in enumerate(coefs.items()):
        sign = "-" if c < 0 else "+"
        mag = _fmt(abs(c))
        term = f"{v}" if mag == "1" else f"{mag} {v}"
        terms.append((f"- {term}" if sign == "-" else term) if i == 0 else f"{sign} {term}")
    return " ".join(terms) if terms else "0 x_dummy"


def setcover(rng: np.random.Generator, nrows: int = 500, ncols: int = 1000, density: float = 0.05,
             max_coef: int = 100) -> str:
    """Balas and Ho set cover: every column covers at least two rows, every row is covered."""
    nnz = max(int(nrows * ncols * density), 2 * ncols, nrows)  # small sizes: still two rows per column
    indices = np.empty(nnz, dtype=int)
    indices[: 2 * ncols] = np.arange(2 * ncols) % ncols  # at least two rows per column
    indices[2 * ncols:] = rng.choice(ncols, size=nnz - 2 * ncols, replace=True)
    _, col_counts = np.unique(indices, return_counts=True)
    rows = np.empty(nnz, dtype=int)
    rows[:nrows] = rng.permutation(nrows)  # at least one column per row
    i = 0
    col_rows = []
    for n in col_counts:
        if i >= nrows:
            rows[i:i + n] = rng.choice(nrows, size=n, replace=False)
        elif i + n > nrows:
            remaining = np.setdiff1d(np.arange(nrows), rows[i:nrows], assume_unique=True)
            rows[nrows:i + n] = rng.choice(remaining, size=i + n - nrows, replace=False)
        col_rows.append(rows[i:i + n])
        i += n
    cost = rng.integers(1, max_coef + 1, size=ncols)
    members: list[list[int]] = [[] for _ in range(nrows)]
    for j, rs in enumerate(col_rows):
        for r in rs:
            members[r].append(j)
    names = [f"x{j + 1}" for j in range(ncols)]
    objective = {names[j]: float(cost[j]) for j in range(ncols)}
    cons = [(f"c{r + 1}", {names[j]: 1.0 for j in sorted(members[r])}, ">=", 1.0) for r in range(nrows)]
    return lp_text("min", objective, cons, names)


def cauctions(rng: np.random.Generator, n_items: int = 100, n_bids: int = 500, min_value: float = 1,
              max_value: float = 100, value_deviation: float = 0.5, add_item_prob: float = 0.7,
              max_n_sub_bids: int = 5, additivity: float = 0.2, budget_factor: float = 1.5,
              resale_factor: float = 0.5, integers: bool = False) -> str:
    """Leyton-Brown's arbitrary-relationships combinatorial auction: maximise accepted bid value."""
    def choose_next_item(bundle_mask: np.ndarray, interests: np.ndarray, compats: np.ndarray) -> int:
        prob = (1 - bundle_mask) * interests * compats[bundle_mask.astype(bool), :].mean(axis=0)
        return int(rng.choice(n_items, p=prob / prob.sum()))

    values = min_value + (max_value - min_value) * rng.random(n_items)
    compats = np.triu(rng.random((n_items, n_items)), k=1)
    compats = compats + compats.T
    compats = compats / compats.sum(1, keepdims=True)
    bids: list[tuple[list[int], float]] = []
    n_dummy = 0
    while len(bids) < n_bids:
        private_interests = rng.random(n_items)
        private_values = values + max_value * value_deviation * (2 * private_interests - 1)
        bidder_bids: dict[tuple[int, ...], float] = {}
        prob = private_interests / private_interests.sum()
        item = int(rng.choice(n_items, p=prob))
        mask = np.zeros(n_items)
        mask[item] = 1
        while rng.random() < add_item_prob and mask.sum() < n_items:
            mask[choose_next_item(mask, private_interests, compats)] = 1
        bundle = np.nonzero(mask)[0]
        price = private_values[bundle].sum() + len(bundle) ** (1 + additivity)
        if price < 0:
            continue
        bidder_bids[tuple(bundle)] = price
        sub_candidates = []
        for item in bundle:
            mask = np.zeros(n_items)
            mask[item] = 1
            while mask.sum() < len(bundle):
                mask[choose_next_item(mask, private_interests, compats)] = 1
            sub = np.nonzero(mask)[0]
            sub_price = private_values[sub].sum() + len(sub) ** (1 + additivity)
            sub_candidates.append((sub, sub_price))
        budget = budget_factor * price
        min_resale = resale_factor * values[bundle].sum()
        for idx in np.argsort([-p for _, p in sub_candidates]):
            if len(bidder_bids) >= max_n_sub_bids + 1 or len(bids) + len(bidder_bids) >= n_bids:
                break
            sub, sub_price = sub_candidates[idx]
            if sub_price < 0 or sub_price > budget or values[sub].sum() < min_resale:
                continue
            if tuple(sub) in bidder_bids:
                continue
            bidder_bids[tuple(sub)] = sub_price
        if len(bidder_bids) > 2:
            n_dummy += 1  # the dummy item that makes a bidder's bids mutually exclusive (XOR)
            dummy = n_items + n_dummy - 1
            bids.extend((list(b) + [dummy], p) for b, p in bidder_bids.items())
        else:
            bids.extend((list(b), p) for b, p in bidder_bids.items())
    bids = bids[:n_bids]
    names = [f"x{i + 1}" for i in range(len(bids))]
    objective = {names[i]: round(p, 6) if not integers else float(int(p)) for i, (_, p) in enumerate(bids)}
    item_bids: dict[int, list[int]] = {}
    for i, (bundle, _) in enumerate(bids):
        for it in bundle:
            item_bids.setdefault(it, []).append(i)
    cons = [(f"c{k + 1}", {names[i]: 1.0 for i in bs}, "<=", 1.0)
            for k, (_, bs) in enumerate(sorted(item_bids.items()))]
    return lp_text("max", objective, cons, names)


def facilities(rng: np.random.Generator, n_customers: int = 100, n_facilities: int = 100, ratio: float = 5.0,
               continuous_assignment: bool = True) -> str:
    """Cornuejols et al. capacitated facility location: open facilities, serve every customer's demand."""
    cx, cy = rng.random(n_customers), rng.random(n_customers)
    fx, fy = rng.random(n_facilities), rng.random(n_facilities)
    demands = rng.integers(5, 35 + 1, size=n_customers)
    capacities = rng.integers(10, 160 + 1, size=n_facilities)
    fixed = (rng.integers(100, 110 + 1, size=n_facilities) * np.sqrt(capacities)
             + rng.integers(0, 90 + 1, size=n_facilities)).astype(int)
    capacities = capacities * ratio * demands.sum() / capacities.sum()
    capacities = capacities.astype(int)
    trans = np.sqrt((cx[:, None] - fx[None, :]) ** 2 + (cy[:, None] - fy[None, :]) ** 2) * 10 * demands[:, None]
    x = [[f"x_{i + 1}_{j + 1}" for j in range(n_facilities)] for i in range(n_customers)]
    y = [f"y_{j + 1}" for j in range(n_facilities)]
    objective = {y[j]: float(fixed[j]) for j in range(n_facilities)}
    for i in range(n_customers):
        for j in range(n_facilities):
            objective[x[i][j]] = round(float(trans[i, j]), 6)
    rows = [(f"demand_{i + 1}", {x[i][j]: -1.0 for j in range(n_facilities)}, "<=", -1.0) for i in range(n_customers)]
    for j in range(n_facilities):
        coefs = {x[i][j]: float(demands[i]) for i in range(n_customers)}
        coefs[y[j]] = -float(capacities[j])
        rows.append((f"capacity_{j + 1}", coefs, "<=", 0.0))
    rows.append(("total_capacity", {y[j]: -float(capacities[j]) for j in range(n_facilities)}, "<=",
                 -float(demands.sum())))
    for i in range(n_customers):
        for j in range(n_facilities):
            rows.append((f"tight_{i + 1}_{j + 1}", {x[i][j]: 1.0, y[j]: -1.0}, "<=", 0.0))
    flat = [v for row in x for v in row]
    bounds = {v: (0.0, 1.0) for v in flat} if continuous_assignment else None
    return lp_text("min", objective, rows, y if continuous_assignment else y + flat, bounds=bounds)


def barabasi_albert(rng: np.random.Generator, n: int, affinity: int) -> list[set[int]]:
    """Adjacency sets of a Barabasi-Albert graph: each new node links to ``affinity`` nodes by degree."""
    adj: list[set[int]] = [set() for _ in range(n)]
    for u in range(affinity + 1):  # a clique on the first affinity+1 nodes
        for v in range(u + 1, affinity + 1):
            adj[u].add(v)
            adj[v].add(u)
    degrees = np.zeros(n)
    degrees[: affinity + 1] = affinity
    for u in range(affinity + 1, n):
        targets = rng.choice(u, size=affinity, replace=False, p=degrees[:u] / degrees[:u].sum())
        for v in targets:
            adj[u].add(int(v))
            adj[int(v)].add(u)
            degrees[v] += 1
        degrees[u] = affinity
    return adj


def greedy_clique_partition(adj: list[set[int]]) -> list[list[int]]:
    """Partition the nodes into cliques, greedily from the highest degree."""
    order = sorted(range(len(adj)), key=lambda v: -len(adj[v]))
    left = set(range(len(adj)))
    cliques = []
    for leader in order:
        if leader not in left:
            continue
        clique = [leader]
        left.discard(leader)
        for v in sorted(adj[leader] & left, key=lambda v: -len(adj[v])):
            if all(v in adj[c] for c in clique):
                clique.append(v)
                left.discard(v)
        cliques.append(clique)
    return cliques


def indset(rng: np.random.Generator, n_nodes: int = 500, affinity: int = 4) -> str:
    """Maximum independent set on a Barabasi-Albert graph, one row per clique of a greedy clique partition."""
    adj = barabasi_albert(rng, n_nodes, affinity)
    groups: set[tuple[int, ...]] = {(u, v) for u in range(n_nodes) for v in adj[u] if u < v}
    for clique in greedy_clique_partition(adj):
        clique = sorted(clique)
        for a in range(len(clique)):
            for b in range(a + 1, len(clique)):
                groups.discard((clique[a], clique[b]))
        if len(clique) > 1:
            groups.add(tuple(clique))
    used = {v for g in groups for v in g}
    groups.update((v,) for v in range(n_nodes) if v not in used)
    names = [f"x{v + 1}" for v in range(n_nodes)]
    rows = [(f"c{k + 1}", {names[v]: 1.0 for v in g}, "<=", 1.0) for k, g in enumerate(sorted(groups))]
    return lp_text("max", {v: 1.0 for v in names}, rows, names)


GENERATORS: dict[str, Callable[..., str]] = {
    "setcover": setcover, "cauctions": cauctions, "facilities": facilities, "indset": indset,
}


def generate_text(family: str, seed: int, index: int, **params: Any) -> str:
    """LP text of instance ``index`` of ``family`` with generator ``params`` and ``seed``."""
    return GENERATORS[family](rng_for(seed, index), **params)


def write_instance(family: str, path: Path, seed: int, index: int, **params: Any) -> Path:
    """Generate one instance and write it to ``path`` (``.lp``, or ``.mps`` through SCIP)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = generate_text(family, seed, index, **params)
    if path.suffix == ".lp":
        path.write_text(text)
        return path
    from opsrl.milp.problem import read_model

    tmp = path.with_suffix(".tmp.lp")
    tmp.write_text(text)
    model = read_model(tmp)
    model.writeProblem(str(path), verbose=False)
    tmp.unlink()
    return path
