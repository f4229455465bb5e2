"""The torch simulator: timing convention, allocation when short, and gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from opsrl.inventory.problem import build
from opsrl.inventory.simulator import Network, State, rollout


def test_timing_lead_time_and_lost_sales():
    inst = build("one_store_lost", lead_time=2)
    net = Network(inst, dtype=torch.float64)
    state = State(torch.tensor([[3.0]], dtype=torch.float64), torch.zeros(1, 1, 2, dtype=torch.float64))
    orders = [7.0, 0.0, 0.0]
    demand = [5.0, 1.0, 2.0]
    seen = []
    for t in range(3):
        cost, state, _ = net.step(state, torch.tensor([[orders[t]]], dtype=torch.float64),
                                  torch.tensor([[demand[t]]], dtype=torch.float64))
        seen.append((float(cost), float(state.onhand)))
    # t0: on hand 3, demand 5: lost 2 (cost 9*2); t1: 0 on hand; order of t0 usable at t2
    assert seen[0] == (18.0, 0.0)
    assert seen[1] == (9.0, 7.0)
    assert seen[2] == (5.0, 5.0)


def test_allocation_is_proportional_when_short():
    inst = build("one_warehouse", n_stores=2)
    net = Network(inst, dtype=torch.float64)
    onhand = torch.tensor([[0.0, 0.0, 6.0]], dtype=torch.float64)
    state = State(onhand, torch.zeros(1, 3, net.lmax, dtype=torch.float64))
    req = torch.tensor([[8.0, 4.0, 0.0]], dtype=torch.float64)  # asks 12 of the warehouse's 6
    _, nxt, ship = net.step(state, req, torch.zeros(1, 2, dtype=torch.float64))
    assert torch.allclose(ship[0, :2], torch.tensor([4.0, 2.0], dtype=torch.float64))
    assert float(nxt.onhand[0, 2]) == 0.0


@pytest.mark.parametrize("setting", ["one_store_backlog", "one_warehouse", "serial"])
def test_gradient_matches_finite_differences(setting):
    inst = build(setting, **({"n_stores": 3} if setting == "one_warehouse" else {}))
    net = Network(inst, dtype=torch.float64)
    rng = np.random.default_rng(0)
    T, B = 12, 4
    demand = torch.as_tensor(rng.uniform(1, 9, (B, T, inst.n_stores)))
    orders = torch.as_tensor(rng.uniform(0, 12, (B, T, net.E)), dtype=torch.float64).requires_grad_(True)
    level = torch.tensor(float(net.down_mean.sum() * 3), dtype=torch.float64, requires_grad=True)

    def total(o: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        costs, _ = rollout(net, lambda st, t: o[:, t] + torch.relu(s - st.position().sum(1, keepdim=True)) *
                           net.share.sum(1)[None] / net.E, demand)
        return costs.sum()

    total(orders, level).backward()
    direction = torch.as_tensor(rng.normal(size=orders.shape))
    eps = 1e-6
    with torch.no_grad():
        fd = (total(orders + eps * direction, level) - total(orders - eps * direction, level)) / (2 * eps)
        fd_s = (total(orders, level + eps) - total(orders, level - eps)) / (2 * eps)
    assert float((orders.grad * direction).sum()) == pytest.approx(float(fd), rel=1e-5, abs=1e-6)
    assert float(level.grad) == pytest.approx(float(fd_s), rel=1e-5, abs=1e-6)
