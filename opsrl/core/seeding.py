"""Seeding: one call makes numpy, Python's random and (if loaded) torch reproducible."""

from __future__ import annotations

import random
import sys

import numpy as np


def rng(seed: int) -> np.random.Generator:
    """The numpy generator every opsrl generator draws from."""
    return np.random.default_rng(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (torch only if it is already imported: no import cost)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
