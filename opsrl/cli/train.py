"""``opsrl train``: train a neural policy.

Routing problems train by imitation of a label file (made by ``opsrl label``); the other
families train on a setting, distribution or system and are handed the options as one
``TrainOptions`` record (see ``opsrl.core.train_options``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer

PRESETS = ("small", "paper")


def train(
    problem: str = typer.Option(..., "--problem", "-p", help="Problem name (see opsrl list)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint file to write."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Routing: label file (.npz) made by opsrl label."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Model and schedule preset (routing: small or paper)."),
    distribution: Optional[str] = typer.Option(None, "--distribution", help="MILP: distribution name, folder or mix."),
    setting: Optional[str] = typer.Option(None, "--setting", help="Inventory / lot sizing / hydro: setting name or file."),
    policy: Optional[str] = typer.Option(None, "--policy", help="Policy architecture (inventory: mlp, symmetric, gnn)."),
    algo: Optional[str] = typer.Option(None, "--algo", help="Training algorithm (lot sizing: pdppo, ppo, or bc: imitate the rolling-horizon MIP)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Environment steps or iterations (sequential families)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Family option key=value (repeatable)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-e", help="Epochs (default: the preset's)."),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", help="Batch size (default: the preset's)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: the preset's)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when there is one), cpu, cuda or cuda:K."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation and the batches."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Checkpoint to continue training from."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimiser steps."),
    nproc: int = typer.Option(1, "--nproc", help="Data-parallel processes on this machine (one per GPU; "
                                                 "gloo on the CPU). Under torchrun, torchrun decides."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout (and no progress)."),
) -> None:
    """Train a policy; writes a checkpoint (safetensors + JSON sidecar) and prints the metrics."""
    from opsrl.core.registry import get_problem, parse_assignments
    from opsrl.core.train_options import FAMILY_TRAINERS, TrainOptions
    from opsrl.routing.labels import LABEL_ARRAYS

    get_problem(problem)
    options = TrainOptions(problem=problem, out=out, device=device, seed=seed, progress=not as_json, data=data,
                           distribution=distribution, setting=setting, policy=policy, algo=algo, preset=preset,
                           epochs=epochs, steps=steps, batch=batch, lr=lr, max_steps=max_steps, resume=resume,
                           nproc=nproc, sets=parse_assignments(set_, "--set"))
    _check_common(options)
    if problem in LABEL_ARRAYS:
        metrics = _train_routing(options)
    elif problem in FAMILY_TRAINERS:
        metrics = _train_family(options)
    else:
        from opsrl.core.errors import UsageError

        raise UsageError(f"--problem {problem}: has no trainer")
    _report(metrics, out, as_json)


def _train_routing(options: Any) -> Any:
    """Imitation training of a BQ policy on a label file."""
    options.reject("data", "preset", "epochs", "batch", "lr", "resume", "max_steps", "nproc", "sets")
    schedule = _routing_schedule(options.sets)
    if options.data is None:
        from opsrl.core.errors import UsageError

        raise UsageError(f"--data: training {options.problem} needs a label file (make one with opsrl label)")
    preset = options.preset or "small"
    _check_label_file(options.problem, options.data, preset)
    try:  # imports torch: only once the options are good
        from opsrl.routing.train import train as train_policy
    except ModuleNotFoundError as exc:
        if exc.name != "opsrl.routing.train":
            raise
        from opsrl.core.errors import OpsrlError

        raise OpsrlError("training is not available in this installation (opsrl.routing.train is missing)") from None

    kwargs: dict[str, Any] = {"epochs": options.epochs, "batch": options.batch, "lr": options.lr,
                              "max_steps": options.max_steps}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # left out: the preset decides
    kwargs.update(schedule)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    from opsrl.core.distributed import launch

    return launch(train_policy, options.nproc, problem=options.problem, data=options.data, out=options.out,
                  preset=preset, device=options.device, resume=options.resume, seed=options.seed,
                  progress=options.progress, **kwargs)


def _routing_schedule(sets: dict[str, str]) -> dict[str, Any]:
    """The learning-rate schedule of routing training from ``--set lr_decay=F --set decay_every=K
    --set lr_epoch=E``: the rate is ``lr`` up to epoch E (default 1) and ``lr * lr_decay ** ((epoch - E)
    // decay_every)`` after it, so a resumed run continues its schedule, and a run that restarts the
    rate names its first epoch as E. ``--set precision=auto|fp32|bf16`` picks the autocast (auto:
    bf16 on CUDA, fp32 on the CPU). ``--set average_from=E --set average_every=K`` also keeps the mean
    of the weights at the end of epochs E, E + K, ... (``<out>.avg.safetensors``)."""
    from opsrl.core.device import PRECISIONS
    from opsrl.core.errors import UsageError
    from opsrl.core.registry import coerce

    if unknown := set(sets) - {"lr_decay", "decay_every", "lr_epoch", "precision", "average_from", "average_every"}:
        raise UsageError(f"--set {sorted(unknown)[0]}: routing training takes lr_decay=, decay_every=, lr_epoch=, "
                         "precision=, average_from= and average_every=")
    if sets.get("precision", "auto") not in PRECISIONS:
        raise UsageError(f"--set precision={sets['precision']}: expected one of {', '.join(PRECISIONS)}")
    out = {key: coerce(sets[key], default, f"--set {key}")
           for key, default in (("lr_decay", 0.98), ("decay_every", 1), ("lr_epoch", 1), ("average_from", 1),
                                ("average_every", 1)) if key in sets}
    if "lr_decay" in out and not 0 < out["lr_decay"] <= 1:
        raise UsageError(f"--set lr_decay={sets['lr_decay']}: expected a number in (0, 1]")
    counts = {"decay_every": "epochs", "lr_epoch": "an epoch number", "average_from": "an epoch number",
              "average_every": "epochs"}
    for key, meaning in counts.items():
        if key in out and out[key] < 1:
            raise UsageError(f"--set {key}={sets[key]}: expected an integer >= 1 ({meaning})")
    if "average_every" in out and "average_from" not in out:
        raise UsageError("--set average_every= needs --set average_from=E (the first epoch of the weight average)")
    if "precision" in sets:
        out["precision"] = sets["precision"]
    return out


def _train_family(options: Any) -> Any:
    """A family's ``train_from_options``: in ``--nproc`` processes (``distributed.launch``; under torchrun in
    this one) for the data-parallel trainers, here for the others (which reject ``--nproc`` themselves)."""
    import importlib

    from opsrl.core.distributed import launch
    from opsrl.core.train_options import DATA_PARALLEL, FAMILY_TRAINERS

    options.out.parent.mkdir(parents=True, exist_ok=True)
    trainer = importlib.import_module(FAMILY_TRAINERS[options.problem]).train_from_options
    if options.problem not in DATA_PARALLEL:
        return trainer(options)
    return launch(trainer, options.nproc, options=options)


def _check_common(options: Any) -> None:
    """Checks shared by every family, before anything heavy is imported."""
    from opsrl.core.device import DEVICES
    from opsrl.core.errors import OpsrlError, UsageError

    for name, value in (("--epochs", options.epochs), ("--batch", options.batch), ("--steps", options.steps),
                        ("--max-steps", options.max_steps), ("--nproc", options.nproc)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value}")
    if options.lr is not None and not (options.lr > 0 and math.isfinite(options.lr)):
        raise UsageError(f"--lr must be a positive number, got {options.lr:g}")
    device = options.device
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"--device {device}: expected one of {', '.join(DEVICES)} or cuda:K")
    if options.out.is_dir():
        raise UsageError(f"--out {options.out}: is a folder; give a checkpoint file path")
    resume = options.resume
    if resume is not None and not resume.is_file() and not resume.with_name(resume.name + ".safetensors").is_file():
        raise OpsrlError(f"--resume {resume}: checkpoint not found")


def _report(metrics: Any, out: Path, as_json: bool) -> None:
    """Print the trainer's metrics as aligned lines, or as one JSON object (under torchrun: rank 0 only)."""
    import os

    from opsrl.cli.common import fmt_num, print_json

    if os.environ.get("RANK", "0") != "0":
        return

    record = _plain(metrics)
    if as_json:
        print_json(record if isinstance(record, dict) else {"metrics": record})
        return
    if isinstance(record, dict):
        width = max((len(str(k)) for k in record), default=0)
        for key, value in record.items():
            typer.echo(f"{str(key):<{width}}  {fmt_num(value) if isinstance(value, float) else value}")
    else:
        typer.echo(str(record))
    written = record.get("checkpoint", out) if isinstance(record, dict) else out
    typer.echo(f"wrote {written}")


def _check_label_file(problem: str, data: Path, preset: str) -> None:
    """The routing-only options, checked before torch is imported (the shared ones are in ``_check_common``)."""
    from opsrl.core.errors import InstanceFileError, OpsrlError, UsageError

    if preset not in PRESETS:
        raise UsageError(f"--preset {preset}: expected one of {', '.join(PRESETS)}")
    if not data.is_file():
        raise OpsrlError(f"{data}: label file not found (make one with opsrl label)")
    held = _label_problem(data)
    if held is None:
        raise InstanceFileError(data, "not a label file (no label arrays); make one with opsrl label")
    if held != problem:
        raise InstanceFileError(data, f"holds {held} labels, not {problem}")


def _label_problem(path: Path) -> str | None:
    """The problem of a label file (None when it holds no label arrays); unreadable files are errors."""
    import numpy as np

    from opsrl.core.errors import InstanceFileError
    from opsrl.routing.labels import LABEL_ARRAYS

    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            problem = str(z["problem"]) if "problem" in files else ""
    except Exception as exc:
        raise InstanceFileError(path, f"not a readable label file ({type(exc).__name__})") from None
    if problem not in LABEL_ARRAYS or not set(LABEL_ARRAYS[problem]) <= files:
        return None
    return problem


def _plain(value: Any) -> Any:
    """Metrics as JSON-able Python (numpy and torch scalars become numbers)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
