"""A fixed machine-to-item assignment: each machine makes one item (or idles) in every period.

It is the simplest policy that never pays a setup after the first period, and the shape that PPO fine-tuned
from the rolling MIP settled on in 20x10; the ``static`` solver measures how far such a policy gets on its
own. Under a fixed assignment items do not interact, so the expected cost is a sum of per-item costs, each
simulated on training scenarios (random initial states, sampled demand: never the test scenarios), and the
assignment is found by coordinate descent (one machine moved at a time, best move first) from a greedy start
and from random starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opsrl.lotsizing.problem import LotSizingSetting, random_states, sample_demand


class StaticAssignment:
    """Policy: machine m always takes choice ``assignment[m]`` (0 idle, i = item i)."""

    def __init__(self, assignment: np.ndarray):
        self.assignment = np.asarray(assignment, dtype=np.int64)

    def act(self, setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, greedy: bool = True) -> np.ndarray:
        return np.repeat(self.assignment[None], len(inventory), axis=0)


class ItemCosts:
    """Mean cost per item (setups, lost sales, holding) over sampled scenarios when a given set of machines
    makes it every period; memoised on the machine set."""

    def __init__(self, setting: LotSizingSetting, count: int, seed: int):
        rng = np.random.default_rng([int(seed), 11])
        self.setting = setting
        self.inventory, self.setup = random_states(setting, rng, count)
        self.demand = sample_demand(setting.demand, rng, (count, setting.horizon, setting.n_items))
        self._memo: dict[tuple[int, tuple[int, ...]], float] = {}

    def cost(self, item: int, machines: tuple[int, ...]) -> float:
        """Mean total cost of item ``item`` (0-based) over the scenarios when ``machines`` make it."""
        key = (item, machines)
        if key not in self._memo:
            self._memo[key] = self._simulate(item, list(machines))
        return self._memo[key]

    @property
    def evaluations(self) -> int:
        """How many distinct (item, machine set) costs were simulated."""
        return len(self._memo)

    def _simulate(self, item: int, machines: list[int]) -> float:
        s = self.setting
        rate = s.production[machines, item].astype(float)  # (k,)
        switch = self.setup[:, machines] != item + 1  # (B, k): pays the setup in period 1
        first = np.maximum(rate[None] - np.where(switch, s.setup_loss[machines, item][None], 0), 0).sum(axis=1)
        cost = (switch * s.setup_costs[machines, item][None]).sum(axis=1)
        inv = self.inventory[:, item].astype(float)
        later = rate.sum()
        for t in range(s.horizon):
            net = inv + (first if t == 0 else later) - self.demand[:, t, item]
            inv = np.minimum(np.maximum(net, 0), s.max_inventory[item])
            cost = cost + np.maximum(-net, 0) * s.lost_sales_costs[item] + inv * s.holding_costs[item]
        return float(cost.mean())


@dataclass
class SearchResult:
    """The assignment found (m,), its mean cost on the sampled scenarios, how many per-item costs were
    simulated, and how many starts were descended."""

    assignment: np.ndarray
    cost: float
    evaluations: int
    starts: int


def _total(costs: ItemCosts, assignment: np.ndarray) -> float:
    """Mean cost of a fixed assignment: the sum of its items' costs, each from the machines that make it."""
    n = costs.setting.n_items
    groups: list[list[int]] = [[] for _ in range(n)]
    for m, a in enumerate(assignment):
        if a > 0:
            groups[a - 1].append(m)
    return sum(costs.cost(i, tuple(g)) for i, g in enumerate(groups))


def _descend(costs: ItemCosts, assignment: np.ndarray) -> tuple[np.ndarray, float]:
    """Move one machine at a time to its best choice until no move lowers the cost."""
    mask = costs.setting.mask
    best = _total(costs, assignment)
    improved = True
    while improved:
        improved = False
        for m in range(len(assignment)):
            keep = assignment[m]
            for a in np.flatnonzero(mask[m]):
                if a == keep:
                    continue
                assignment[m] = a
                c = _total(costs, assignment)
                if c < best - 1e-9:
                    best, keep, improved = c, a, True
            assignment[m] = keep
    return assignment, best


def _greedy(costs: ItemCosts) -> np.ndarray:
    """Machines in order of their total rate, each to the choice that lowers the cost most so far."""
    s = costs.setting
    assignment = np.zeros(s.n_machines, dtype=np.int64)
    for m in np.argsort(-s.production.sum(axis=1), kind="stable"):
        options = np.flatnonzero(s.mask[m])
        trial = []
        for a in options:
            assignment[m] = a
            trial.append(_total(costs, assignment))
        assignment[m] = options[int(np.argmin(trial))]
    return assignment


def search_assignment(setting: LotSizingSetting, *, scenarios: int = 200, restarts: int = 4,
                      seed: int = 0) -> SearchResult:
    """The cheapest fixed assignment found (greedy start + ``restarts`` random starts, each descended), costed
    on ``scenarios`` sampled training scenarios."""
    costs = ItemCosts(setting, scenarios, seed)
    rng = np.random.default_rng([int(seed), 13])
    best_a, best_c = _descend(costs, _greedy(costs))
    for _ in range(restarts):
        start = np.array([rng.choice(np.flatnonzero(row)) for row in setting.mask], dtype=np.int64)
        a, c = _descend(costs, start)
        if c < best_c:
            best_a, best_c = a, c
    return SearchResult(best_a, best_c, costs.evaluations, restarts + 1)
