"""Where the shared benchmark data lives: ``$OPSRL_DATA`` or ``../shared/data`` from the project root."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path | None:
    """The benchmark data folder (TSPLIB, CVRPLIB X, MIPLIB 3, hydro), or None if it is absent."""
    env = os.environ.get("OPSRL_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd() / ".." / "shared" / "data", PROJECT_ROOT.parent / "shared" / "data"]
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    return None


def examples_dir() -> Path | None:
    """The project's ``instances/`` folder of small example instances, when running from a checkout."""
    cand = PROJECT_ROOT / "instances"
    return cand if cand.is_dir() else None
