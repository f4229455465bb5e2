"""Shipped pretrained checkpoints: ``<name>.safetensors`` with a ``<name>.json`` metadata sidecar."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped(name: str) -> Path:
    """Path of the shipped checkpoint ``<name>.safetensors`` (it may not exist); no torch needed."""
    return Path(str(resources.files("opsrl.weights") / f"{name}.safetensors"))
