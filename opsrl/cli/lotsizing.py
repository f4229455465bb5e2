"""``opsrl lotsizing``: lot-sizing tools: rolling-horizon MIP demonstrations for imitation."""

from __future__ import annotations

import json
from typing import Optional

import typer

lotsizing_app = typer.Typer(help="Lot sizing: label training episodes with a teacher (the rolling-horizon MIP, or a fixed assignment) to imitate it.",
                            no_args_is_help=True)


@lotsizing_app.command("demos")
def demos(
    setting: str = typer.Option(..., "--setting", help="A built-in setting (15x5, 20x10, 25x10, 25x15) or a .json file."),
    episodes: int = typer.Option(48, "--episodes", "-n", help="Stop once the file holds this many episodes."),
    out: str = typer.Option(..., "--out", "-o", help="The .npz file to write (re-running continues it)."),
    horizon: int = typer.Option(5, "--horizon", help="Periods the MIP plans ahead on expected demand."),
    step_time: float = typer.Option(0.2, "--step-time", help="SCIP seconds per MIP (one MIP per period)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the episodes (initial states, demand)."),
    dagger: Optional[str] = typer.Option(None, "--dagger", help="A policy checkpoint that decides while the teacher only labels (DAgger)."),
    teacher: str = typer.Option("mip", "--teacher", help="mip (rolling-horizon MIP) or static (the best fixed machine-to-item assignment)."),
) -> None:
    """Label training episodes with a teacher's choices: the rolling-horizon MIP by default (resumable)."""
    from pathlib import Path

    from opsrl.lotsizing.imitate import collect_demonstrations
    from opsrl.lotsizing.train import resolve_setting

    inst = resolve_setting(setting)
    policy = None
    if dagger:
        from opsrl.lotsizing.policy import load_policy

        policy, _ = load_policy(inst, dagger)
    summary = collect_demonstrations(inst, episodes, Path(out), seed=seed, horizon=horizon, step_time=step_time,
                                     policy=policy, progress=True, teacher=teacher)
    typer.echo(json.dumps(summary))
