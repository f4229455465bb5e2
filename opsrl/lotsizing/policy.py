"""PDPPO / PPO networks: a factorised per-machine categorical actor with masks, and MLP critics.

The actor maps the state features to one softmax per machine over {idle, item 1..n}; choices a machine
cannot make are masked out. ``critic`` values the state, ``critic_post`` (PDPPO only) the post-decision
state (inventory after production, new setups), both on the same feature layout.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from opsrl.core.errors import OpsrlError
from opsrl.lotsizing.env import features
from opsrl.lotsizing.problem import LotSizingSetting
from opsrl.weights import shipped


@dataclass(frozen=True)
class PolicyConfig:
    """The architecture, stored in the checkpoint sidecar."""

    n_items: int
    n_machines: int
    hidden: int = 128
    dual_critic: bool = True

    @property
    def dim_in(self) -> int:
        return self.n_items + self.n_machines * (self.n_items + 1)


def _mlp(dim_in: int, hidden: int, dim_out: int, act: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, dim_out))


class LotSizingPolicy(nn.Module):
    """Actor (per-machine categorical) plus state critic, and a post-decision critic when ``dual_critic``."""

    def __init__(self, config: PolicyConfig, mask: np.ndarray):
        super().__init__()
        self.config = config
        n, m, h = config.n_items, config.n_machines, config.hidden
        self.actor = _mlp(config.dim_in, h, m * (n + 1), nn.ReLU)
        self.critic = _mlp(config.dim_in, h, 1, nn.Tanh)
        self.critic_post = _mlp(config.dim_in, h, 1, nn.Tanh) if config.dual_critic else None
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.bool), persistent=False)

    def distribution(self, x: torch.Tensor) -> torch.distributions.Categorical:
        """Per-machine categorical over (B, m, n+1), infeasible choices at probability zero."""
        logits = self.actor(x).view(-1, self.config.n_machines, self.config.n_items + 1)
        logits = logits.masked_fill(~self.mask, float("-inf"))
        return torch.distributions.Categorical(logits=logits, validate_args=False)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def value_post(self, x: torch.Tensor) -> torch.Tensor:
        if self.critic_post is None:
            raise RuntimeError("this policy has no post-decision critic (trained with PPO)")
        return self.critic_post(x).squeeze(-1)

    @torch.no_grad()
    def act(self, setting: LotSizingSetting, inventory: np.ndarray, setup: np.ndarray,
            greedy: bool = True, generator: torch.Generator | None = None) -> np.ndarray:
        """Choices (B, m) for a batch of states: the most likely feasible choice, or a sample."""
        x = torch.from_numpy(features(setting, inventory, setup)).to(self.mask.device)
        dist = self.distribution(x)
        if greedy:
            return dist.probs.argmax(-1).cpu().numpy()
        probs = dist.probs.reshape(-1, dist.probs.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).view(dist.probs.shape[:-1]).cpu().numpy()


def shipped_checkpoint(setting: str) -> Path:
    """Where the shipped PDPPO checkpoint for a built-in setting lives (it may not exist)."""
    return shipped(f"lotsizing_{setting}")


def load_policy(setting: LotSizingSetting, checkpoint: str | os.PathLike | None = None,
                device: str = "cpu") -> tuple[LotSizingPolicy, dict[str, Any]]:
    """The policy in ``checkpoint`` (None or "": the shipped one for the setting's name) and its metadata."""
    from opsrl.core.checkpoint import load_checkpoint

    path = shipped_checkpoint(setting.name) if checkpoint in (None, "") else Path(checkpoint)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        what = f"no shipped lotsizing checkpoint for setting {setting.name!r}" if checkpoint in (None, "") \
            else "checkpoint not found"
        raise OpsrlError(f"{path}: {what}; train one with `opsrl train --problem lotsizing --setting "
                         f"{setting.name} --algo pdppo --out CKPT` and pass --param checkpoint=CKPT")
    state, meta = load_checkpoint(path, device="cpu")
    if meta.get("problem") != "lotsizing":
        raise OpsrlError(f"{path}: a checkpoint for {meta.get('problem')!r}, not lotsizing")
    try:
        config = PolicyConfig(**meta["architecture"])
    except (KeyError, TypeError) as exc:
        raise OpsrlError(f"{path}: sidecar has no valid 'architecture' ({exc})") from None
    if (config.n_items, config.n_machines) != (setting.n_items, setting.n_machines):
        raise OpsrlError(f"{path}: trained for {config.n_items} items x {config.n_machines} machines, but setting "
                         f"{setting.name} has {setting.n_items} x {setting.n_machines}")
    policy = LotSizingPolicy(config, setting.mask)
    try:
        policy.load_state_dict(state)
    except RuntimeError as exc:
        raise OpsrlError(f"{path}: weights do not match the sidecar's architecture ({str(exc).splitlines()[0]})") from None
    return policy.to(device).eval(), meta


def config_dict(config: PolicyConfig) -> dict[str, Any]:
    return asdict(config)
