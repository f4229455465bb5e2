"""Checkpoint io: weights as safetensors with a JSON sidecar (architecture, problem, metrics, version)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from opsrl.core.errors import OpsrlError
from opsrl.core.files import atomic_write_text


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON metadata file that goes with a ``.safetensors`` checkpoint."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """Write ``state_dict`` (tensors) as safetensors and ``metadata`` as its JSON sidecar, atomically."""
    from safetensors.torch import save_file

    from opsrl import __version__

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    tmp = path.with_suffix(".safetensors.partial")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
    meta = {"opsrl_version": __version__, **metadata}
    atomic_write_text(sidecar_path(path), json.dumps(meta, indent=2, sort_keys=True, default=str))
    return path


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint and its sidecar; a missing file is a one-line user error."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise OpsrlError(f"{path}: checkpoint not found (expected a .safetensors file with a .json sidecar)")
    meta_path = sidecar_path(path)
    if not meta_path.is_file():
        raise OpsrlError(f"{meta_path}: checkpoint metadata not found (expected beside {path.name})")
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device=device)
        meta = json.loads(meta_path.read_text())
    except Exception as exc:  # corrupt file: say which and why
        raise OpsrlError(f"{path}: unreadable checkpoint ({exc})") from None
    return state, meta
