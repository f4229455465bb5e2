"""The options of ``opsrl train``, handed as one record to the family that trains the problem.

Routing trains by imitation of a label file; the other families train on a setting, a
distribution or a system. Each family reads the options it understands and rejects the rest
with ``TrainOptions.reject`` so that a misplaced option is a usage error, not silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from opsrl.core.errors import UsageError

# problem -> module exposing ``train_from_options(options: TrainOptions) -> dict`` (routing is separate)
FAMILY_TRAINERS: dict[str, str] = {
    "milp": "opsrl.milp.train",
    "inventory": "opsrl.inventory.train",
    "lotsizing": "opsrl.lotsizing.train",
    "hydro": "opsrl.hydro.train",
}

# the families whose trainer is data parallel: ``opsrl train --nproc N`` runs its ``train_from_options``
# in N processes (``opsrl.core.distributed.launch``), each taking its share of every global batch
DATA_PARALLEL: frozenset[str] = frozenset({"milp", "inventory"})

# option name -> the CLI flag that sets it, for error messages
FLAGS: dict[str, str] = {
    "data": "--data", "distribution": "--distribution", "setting": "--setting", "policy": "--policy",
    "algo": "--algo", "epochs": "--epochs", "steps": "--steps", "batch": "--batch", "lr": "--lr",
    "resume": "--resume", "max_steps": "--max-steps", "preset": "--preset", "sets": "--set",
    "nproc": "--nproc",
}


@dataclass(frozen=True)
class TrainOptions:
    """What the user asked ``opsrl train`` for; None means "not given: the family's default"."""

    problem: str
    out: Path
    device: str = "auto"
    seed: int = 0
    progress: bool = True
    data: Path | None = None
    distribution: str | None = None
    setting: str | None = None
    policy: str | None = None
    algo: str | None = None
    preset: str | None = None
    epochs: int | None = None
    steps: int | None = None
    batch: int | None = None
    lr: float | None = None
    max_steps: int | None = None
    resume: Path | None = None
    nproc: int = 1
    sets: dict[str, str] = field(default_factory=dict)

    def given(self) -> set[str]:
        """Names of the optional fields the user set."""
        out = set()
        for f in fields(self):
            if f.name in ("problem", "out", "device", "seed", "progress"):
                continue
            value = getattr(self, f.name)
            if f.name == "sets" and value:
                out.add(f.name)
            elif f.name == "nproc" and value != 1:
                out.add(f.name)
            elif f.name not in ("sets", "nproc") and value is not None:
                out.add(f.name)
        return out

    def reject(self, *accepted: str) -> None:
        """Usage error naming the first given option this family does not take."""
        for name in sorted(self.given() - set(accepted)):
            takes = ", ".join(FLAGS.get(a, a) for a in accepted) or "no options"
            raise UsageError(f"{FLAGS.get(name, name)}: training {self.problem} does not take this option "
                             f"(it takes {takes})")
