"""Device choice for neural paths: ``auto`` picks CUDA when there is one, the CPU otherwise."""

from __future__ import annotations

from opsrl.core.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def choose_device(device: str = "auto") -> str:
    """Resolve ``auto|cpu|cuda[:k]`` to a concrete torch device string (imports torch)."""
    if device != "auto" and device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"unknown device {device!r}: expected one of auto, cpu, cuda, cuda:K")
    if device == "cpu":
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but torch sees no CUDA device: use --device cpu or auto")
    return device
