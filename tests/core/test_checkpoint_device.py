import pytest

from opsrl.core.checkpoint import load_checkpoint, save_checkpoint
from opsrl.core.device import choose_device
from opsrl.core.errors import OpsrlError, UsageError


def test_checkpoint_round_trip_with_sidecar(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"layer.weight": torch.randn(3, 4), "layer.bias": torch.zeros(3)}
    path = save_checkpoint(tmp_path / "model", state, {"problem": "cvrp", "architecture": {"layers": 2}})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    loaded, meta = load_checkpoint(path)
    assert torch.equal(loaded["layer.weight"], state["layer.weight"])
    assert meta["problem"] == "cvrp" and meta["architecture"] == {"layers": 2} and "opsrl_version" in meta


def test_missing_or_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(OpsrlError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(OpsrlError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_device_choice():
    assert choose_device("cpu") == "cpu"
    with pytest.raises(UsageError, match="unknown device"):
        choose_device("tpu")
    torch = pytest.importorskip("torch")
    assert choose_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device"):
            choose_device("cuda")
