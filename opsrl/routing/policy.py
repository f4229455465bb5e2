"""The BQ-NCO policy: a transformer that re-encodes the remaining sub-problem and scores its nodes.

Architecture (Drakulic et al. 2023, as ANCHORS.md describes it): a linear node embedding, learned
origin and destination vectors added to the first and last tokens (not for kp, whose tokens are just
the remaining items), no positional encoding, a stack of encoder layers with ReZero residuals
(``x + alpha * sublayer(x)``, ``alpha`` a learned scalar starting at 0; no layer norm, no dropout)
and full self-attention, and a linear score head: one logit per token (two for cvrp: go directly,
go via the depot). This module imports torch; nothing on the classical path imports it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from opsrl.core.errors import OpsrlError
from opsrl.weights import shipped

# Token features per problem (see bq.py) and logits per token.
DIM_IN = {"tsp": 2, "cvrp": 4, "op": 4, "kp": 3}
LOGITS = {"tsp": 1, "cvrp": 2, "op": 1, "kp": 1}
# Model sizes: "paper" is BQ-NCO's (about 3.1 M parameters); "small" trains on a CPU; "tiny" is for tests.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"layers": 2, "width": 32, "heads": 4, "ff": 64},
    "small": {"layers": 4, "width": 128, "heads": 8, "ff": 256},
    "paper": {"layers": 9, "width": 192, "heads": 12, "ff": 512},
}


@dataclass(frozen=True)
class PolicyConfig:
    """The architecture of a BQPolicy; stored in every checkpoint's sidecar."""

    problem: str
    layers: int = 4
    width: int = 128
    heads: int = 8
    ff: int = 256
    dim_in: int = 0  # 0: the problem's own feature count

    def __post_init__(self) -> None:
        if self.problem not in DIM_IN:
            raise OpsrlError(f"BQ policies exist for {', '.join(DIM_IN)}, not {self.problem!r}")
        if self.dim_in == 0:
            object.__setattr__(self, "dim_in", DIM_IN[self.problem])
        if self.width % self.heads:
            raise OpsrlError(f"policy width {self.width} is not a multiple of heads {self.heads}")

    @property
    def logits(self) -> int:
        """Logits per token: 2 for cvrp (direct, via depot), 1 otherwise."""
        return LOGITS[self.problem]

    @property
    def has_ends(self) -> bool:
        """Whether the first and last tokens are the origin and the destination (all but kp)."""
        return self.problem != "kp"

    @classmethod
    def preset(cls, problem: str, name: str = "small") -> PolicyConfig:
        """The named preset's architecture for ``problem``."""
        if name not in PRESETS:
            raise OpsrlError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
        return cls(problem=problem, **PRESETS[name])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ReZeroLayer(nn.Module):
    """One encoder layer: self-attention then feed-forward, each added back times a learned ``alpha`` (0 at start)."""

    def __init__(self, width: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ff = nn.Sequential(nn.Linear(width, ff), nn.ReLU(), nn.Linear(ff, width))
        self.alpha = nn.Parameter(torch.zeros(()))

    def attention(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(b, t, w))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.alpha * self.attention(x, attn_mask)
        return x + self.alpha * self.ff(x)


class BQPolicy(nn.Module):
    """Scores the tokens of a sub-problem: ``forward(features (B, T, dim_in), pad_mask) -> logits (B, T, k)``."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embed = nn.Linear(config.dim_in, w)
        if config.has_ends:
            self.origin = nn.Parameter(torch.randn(w) / math.sqrt(w))
            self.destination = nn.Parameter(torch.randn(w) / math.sqrt(w))
        self.layers = nn.ModuleList(ReZeroLayer(w, config.heads, config.ff) for _ in range(config.layers))
        self.head = nn.Linear(w, config.logits)
        # The knn that decoding uses when none is given: 0 (every node), or the checkpoint's
        # recommendation (its sidecar's "decoding": {"knn": K}, set by load_policy).
        self.knn = 0

    def forward(self, features: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits per token and action; ``pad_mask`` (B, T) is True at padding tokens (at the end of a row)."""
        x = self.embed(features)
        attn_mask = None
        if self.config.has_ends:
            rows = torch.arange(x.shape[0], device=x.device)
            last = (torch.full_like(rows, x.shape[1] - 1) if pad_mask is None
                    else (~pad_mask).sum(1) - 1)
            ends = torch.zeros_like(x)  # x's dtype: bfloat16 under autocast
            ends[:, 0] = self.origin.to(x.dtype)
            ends[rows, last] = ends[rows, last] + self.destination.to(x.dtype)
            x = x + ends
        if pad_mask is not None:
            attn_mask = (~pad_mask)[:, None, None, :]  # True: may attend
        for layer in self.layers:
            x = layer(x, attn_mask)
        return self.head(x)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def decoding_knn(self, knn: int | None = None) -> int:
        """``knn`` as asked, or this policy's own (``self.knn``) when None."""
        return self.knn if knn is None else knn

    def solve(self, instances: Any, *, beam: int = 1, samples: int = 0, knn: int | None = None, device: str | None = None,
              seed: int = 0, batch: int = 256, precision: str = "auto") -> list[Any]:
        """Decode a batch of instances at once (one instance is a batch of one); each answer costed by ``evaluate``.

        Returns one ``opsrl.Result`` per instance (solver ``bq``: objective, feasibility, gap to the
        reference, the solution). ``beam``, ``samples``, ``knn``, ``batch`` and ``precision`` are as in
        the ``bq`` solver (``knn`` None: the policy's own, ``self.knn``); ``device`` defaults to where the policy is.

        >>> import opsrl
        >>> policy = opsrl.load_policy("kp")  # the shipped knapsack policy
        >>> results = policy.solve(opsrl.generate("kp", size=20, seed=0, count=3))
        >>> [r.feasible for r in results]
        [True, True, True]
        """
        from opsrl.core.registry import get_problem, get_solver
        from opsrl.core.run import cost_solution
        from opsrl.core.types import Solution, Status
        from opsrl.routing.decode import decode_details

        items = list(instances) if isinstance(instances, (list, tuple)) else [instances]
        problem = get_problem(self.config.problem)
        if bad := [getattr(i, "problem", type(i).__name__) for i in items if getattr(i, "problem", None) != problem.name]:
            raise OpsrlError(f"a {problem.name} policy cannot solve {bad[0]} instances")
        if not items:
            return []
        for inst in items:
            problem.validate(inst)
        device = device or str(next(self.parameters()).device)
        found = decode_details(self, items, beam=beam, samples=samples, knn=knn, device=device, seed=seed, batch=batch,
                             precision=precision)
        spec = get_solver(problem.name, "bq")
        options = {"beam": beam, "samples": samples, "knn": found.stats["knn"], "batch": batch, "precision": precision}
        per = found.stats["decode_s"] / len(items)
        stats = {**found.stats, "batch_size": len(items)}
        return [cost_solution(problem, spec, inst, Solution(Status.FEASIBLE, sol, dict(stats), wall_s=per), None, seed,
                              options, float("nan")) for inst, sol in zip(items, found.solutions)]


def shipped_checkpoint(problem: str) -> Path:
    """Where the shipped default checkpoint of ``problem`` lives (it may not exist)."""
    return shipped(f"bq_{problem}")


def load_policy(problem: str, checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> BQPolicy:
    """A BQ policy from ``checkpoint`` (None or "": the shipped default for ``problem``), in eval mode on ``device``."""
    from opsrl.core.checkpoint import load_checkpoint

    path = shipped_checkpoint(problem) if checkpoint in (None, "") else Path(checkpoint)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        what = "no shipped bq checkpoint" if checkpoint in (None, "") else "checkpoint not found"
        raise OpsrlError(f"{path}: {what} for {problem}; train one with `opsrl train --problem {problem} "
                         f"--data LABELS.npz --out {path.name}` and pass it as checkpoint (--param checkpoint=PATH)")
    state, meta = load_checkpoint(path, device="cpu")
    if meta.get("problem") != problem:
        raise OpsrlError(f"{path}: a checkpoint for {meta.get('problem')!r}, not {problem}")
    try:
        config = PolicyConfig(**meta["architecture"])
    except (KeyError, TypeError) as exc:
        raise OpsrlError(f"{path}: sidecar has no valid 'architecture' ({exc})") from None
    policy = BQPolicy(config)
    try:
        policy.load_state_dict(state)
    except RuntimeError as exc:
        raise OpsrlError(f"{path}: weights do not match the architecture of its sidecar "
                         f"({str(exc).splitlines()[0]})") from None
    policy.knn = _decoding_knn(path, meta)
    return policy.to(device).eval()


def _decoding_knn(path: Path, meta: dict[str, Any]) -> int:
    """The sidecar's recommended ``decoding.knn`` (0 when it names none)."""
    decoding = meta.get("decoding", {})
    knn = decoding.get("knn", 0) if isinstance(decoding, dict) else None
    if not isinstance(knn, int) or isinstance(knn, bool) or knn < 0:
        raise OpsrlError(f"{path}: sidecar's decoding.knn must be a whole number >= 0 (0: every node), "
                         f"got {decoding!r}")
    return knn
