"""The lot-sizing dynamics, vectorised over a batch of scenarios with numpy.

One period is two functions: ``post_decision`` (deterministic: setups, setup losses, production; its
result is the post-decision state, inventory after production and before demand) and ``demand_step``
(stochastic: demand is served, the rest is lost, inventory is capped, holding is paid). ``LotSizingEnv``
wraps them as a gymnasium-style single environment (reset/step) without depending on gymnasium.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opsrl.lotsizing.problem import LotSizingSetting, random_states, sample_demand


def post_decision(setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray, action: np.ndarray,
                  *, check: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply machine choices ``action`` (B, m; 0 idle, i item) to states: (post inventory, new setup, setup cost).

    A machine that switches to an item it is not set up for pays the setup cost and loses the setup loss from
    that period's output (output never goes below zero); an idle machine loses its setup. A choice a machine
    cannot make (rate zero, out of range) raises ValueError when ``check`` is on.
    """
    action = np.asarray(action, dtype=np.int64)
    m_idx = np.arange(setting.n_machines)
    if check:
        bad = (action < 0) | (action > setting.n_items)
        if not bad.any():
            bad = ~setting.mask[m_idx, action]
        if bad.any():
            b, m = np.argwhere(bad)[0]
            raise ValueError(f"machine {m} cannot take choice {action[b, m]} (0 idle, 1..{setting.n_items} items "
                             f"with a positive production rate)")
    item = np.maximum(action - 1, 0)
    active = action > 0
    changed = active & (action != setup)
    rate = np.where(active, setting.production[m_idx, item], 0)
    loss = np.where(changed, setting.setup_loss[m_idx, item], 0)
    output = np.maximum(rate - loss, 0)
    cost = np.where(changed, setting.setup_costs[m_idx, item], 0.0).sum(axis=1)
    onehot = action[:, :, None] == np.arange(1, setting.n_items + 1)[None, None, :]
    post = inventory + (onehot * output[:, :, None]).sum(axis=1)
    return post, action.copy(), cost


def demand_step(setting: LotSizingSetting, post_inventory: np.ndarray,
                demand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Serve ``demand`` (B, n) from post-decision inventory: (next inventory, lost-sales cost, holding cost).

    Unmet demand is lost (no backlog) at the item's lost-sales cost; inventory above the cap vanishes;
    holding is paid on the inventory left at the end of the period.
    """
    net = post_inventory - demand
    lost = np.maximum(-net, 0)
    inv = np.minimum(np.maximum(net, 0), setting.max_inventory)
    return inv, lost @ setting.lost_sales_costs, inv @ setting.holding_costs


def features(setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray) -> np.ndarray:
    """Policy input (B, n + m(n+1)) float32: inventory over its cap, and each machine's setup one-hot."""
    inv = inventory / setting.max_inventory
    onehot = setup[:, :, None] == np.arange(setting.n_items + 1)[None, None, :]
    return np.concatenate([inv, onehot.reshape(len(setup), -1)], axis=1).astype(np.float32)


def run_policy(policy: Any, setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray,
               demand: np.ndarray, greedy: bool = True) -> np.ndarray:
    """Actions (k, T, m) of the policy over the demand paths (k, T, n), decided period by period."""
    inv, stp = inventory.copy(), setup.copy()
    out = np.zeros((len(inv), demand.shape[1], setting.n_machines), dtype=np.int64)
    for t in range(demand.shape[1]):
        a = policy.act(setting, inv, stp, greedy=greedy)
        out[:, t] = a
        post, stp, _ = post_decision(setting, inv, stp, a, check=False)
        inv, _, _ = demand_step(setting, post, demand[:, t])
    return out


class BatchEnv:
    """A batch of independent episodes of one setting: random initial states, fresh demand each period."""

    def __init__(self, setting: LotSizingSetting, batch: int, rng: np.random.Generator):
        self.setting, self.batch, self.rng = setting, batch, rng
        self.reset()

    def reset(self) -> None:
        self.inventory, self.setup = random_states(self.setting, self.rng, self.batch)
        self.t = 0

    def step(self, action: np.ndarray, *, check: bool = False) -> dict[str, np.ndarray]:
        """One period for every episode; returns the post-decision state and the cost parts."""
        post, setup, c_setup = post_decision(self.setting, self.inventory, self.setup, action, check=check)
        demand = sample_demand(self.setting.demand, self.rng, (self.batch, self.setting.n_items))
        inv, c_lost, c_hold = demand_step(self.setting, post, demand)
        self.inventory, self.setup, self.t = inv, setup, self.t + 1
        return {"post_inventory": post, "setup": setup, "setup_cost": c_setup, "lost_cost": c_lost,
                "holding_cost": c_hold, "cost": c_setup + c_lost + c_hold}


class LotSizingEnv:
    """Gymnasium-style single environment: ``reset(seed) -> (obs, info)``, ``step(a) -> (obs, r, term, trunc, info)``.

    Observations are dicts with ``inventory`` (n,) and ``setup`` (m,); the reward is minus the period cost;
    the episode ends after ``setting.horizon`` periods. ``info`` carries the post-decision inventory.
    """

    def __init__(self, setting: LotSizingSetting, seed: int | None = None):
        self.setting = setting
        self.rng = np.random.default_rng(seed)
        self.inventory = np.zeros(setting.n_items, dtype=np.int64)
        self.setup = np.zeros(setting.n_machines, dtype=np.int64)
        self.t = 0

    def action_mask(self) -> np.ndarray:
        """(m, n+1) bool: the choices each machine may take."""
        return self.setting.mask

    def _obs(self) -> dict[str, np.ndarray]:
        return {"inventory": self.inventory.copy(), "setup": self.setup.copy()}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        inv, setup = random_states(self.setting, self.rng, 1)
        self.inventory, self.setup, self.t = inv[0], setup[0], 0
        return self._obs(), {"action_mask": self.action_mask()}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self.t >= self.setting.horizon:
            raise RuntimeError("episode is over: call reset()")
        act = np.asarray(action, dtype=np.int64).reshape(1, -1)
        if act.shape[1] != self.setting.n_machines:
            raise ValueError(f"action must hold one choice per machine ({self.setting.n_machines}), got {act.shape[1]}")
        post, setup, c_setup = post_decision(self.setting, self.inventory[None], self.setup[None], act)
        demand = sample_demand(self.setting.demand, self.rng, (1, self.setting.n_items))
        inv, c_lost, c_hold = demand_step(self.setting, post, demand)
        self.inventory, self.setup, self.t = inv[0], setup[0], self.t + 1
        info = {"post_inventory": post[0], "demand": demand[0], "setup_cost": float(c_setup[0]),
                "lost_sales_cost": float(c_lost[0]), "holding_cost": float(c_hold[0]),
                "action_mask": self.action_mask()}
        cost = float(c_setup[0] + c_lost[0] + c_hold[0])
        return self._obs(), -cost, self.t >= self.setting.horizon, False, info
