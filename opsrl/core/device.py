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


PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (Ampere+ CUDA; CPUs with AVX512-BF16 or AMX)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def amp_dtype(device: str, precision: str = "auto", training: bool = False) -> object | None:
    """The autocast dtype for ``precision`` on ``device``, or None for full fp32.

    ``auto``: bf16 on CUDA (fp16 where it lacks bf16); on a CPU, bf16 for inference where the
    hardware has it (BQ decoding ran 1.4-2x faster, same solutions to within rounding) and fp32
    for training (bf16 backward passes ran 1.7x slower on an AVX512-BF16 CPU).
    """
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.startswith("cuda"):
        return torch.bfloat16 if native_bf16(device) else torch.float16
    return torch.bfloat16 if native_bf16(device) and not training else None


def precision_name(dtype: object | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``: how a run's ``amp_dtype`` is recorded in sidecars and tables."""
    return {"torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(str(dtype), "fp32")


def autocast(device: str, dtype: object | None):  # -> context manager
    """``torch.autocast`` on ``device``'s type with ``dtype``; a no-op when ``dtype`` is None."""
    import torch

    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=dtype, enabled=dtype is not None)
