"""The TS-DDR decision rule: an LSTM (or MLP) over inflows and storage that emits target volumes.

At stage t it reads the inflow just observed, the storage at the start of the stage (both scaled)
and the season, and outputs one target end-of-stage volume per plant, squashed by a sigmoid into
[vmin, vmax]: the network's output shifts the logit of the current fill fraction, so an untrained
rule holds storage (run of river). The LSTM's hidden state carries the inflow history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from opsrl.hydro.problem import HydroSystem


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of a decision rule (stored in the checkpoint sidecar)."""

    n_hydro: int
    hidden: int = 64
    kind: str = "lstm"  # "lstm" or "mlp"
    period: int = 52

    def to_dict(self) -> dict:
        return asdict(self)


class TargetPolicy(nn.Module):
    """Stage by stage: (inflow, storage, season) -> target volumes within the reservoir bounds."""

    def __init__(self, config: PolicyConfig, system: HydroSystem | None = None):
        super().__init__()
        self.config = c = config
        n_in = 2 * c.n_hydro + 2
        if c.kind == "lstm":
            self.cell = nn.LSTMCell(n_in, c.hidden)
        elif c.kind == "mlp":
            self.cell = nn.Sequential(nn.Linear(n_in, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.hidden), nn.Tanh())
        else:
            raise ValueError(f"unknown policy kind {c.kind!r}: expected lstm or mlp")
        self.head = nn.Linear(c.hidden, c.n_hydro)
        with torch.no_grad():  # start by holding storage (run of river), then learn to store or draw
            self.head.bias.zero_()
            self.head.weight.mul_(0.1)
        h = c.n_hydro
        self.register_buffer("vmin", torch.zeros(h, dtype=torch.float64))
        self.register_buffer("vmax", torch.ones(h, dtype=torch.float64))
        self.register_buffer("w_scale", torch.ones(h, dtype=torch.float64))
        if system is not None:
            self.vmin.copy_(torch.as_tensor(system.vmin))
            self.vmax.copy_(torch.as_tensor(system.vmax))
            mean_w = np.asarray(system.inflow_support).mean(axis=(0, 1))
            self.w_scale.copy_(torch.as_tensor(np.maximum(mean_w, 1e-6)))
        self.double()

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.config.kind != "lstm":
            return None
        z = torch.zeros(batch, self.config.hidden, dtype=torch.float64, device=self.vmin.device)
        return z, z.clone()

    def forward(self, t: int, w: torch.Tensor, v: torch.Tensor, state):
        """Targets (B, H) for stage ``t`` given inflows ``w`` (B, H) and start volumes ``v`` (B, H)."""
        span = (self.vmax - self.vmin).clamp_min(1e-9)
        ang = 2 * np.pi * t / self.config.period
        season = torch.tensor([np.sin(ang), np.cos(ang)], dtype=w.dtype, device=w.device).expand(len(w), 2)
        x = torch.cat([w / self.w_scale - 1.0, 2 * (v - self.vmin) / span - 1.0, season], dim=1)
        if self.config.kind == "lstm":
            hx, cx = self.cell(x, state)
            state, feat = (hx, cx), hx
        else:
            feat = self.cell(x)
        frac = ((v - self.vmin) / span).clamp(0.05, 0.95)
        return self.vmin + span * torch.sigmoid(torch.logit(frac) + self.head(feat)), state
