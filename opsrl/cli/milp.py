"""``opsrl milp``: MILP-family tools: expert-sample collection, distributions, hardness labels, policy accuracy."""

from __future__ import annotations

import json
from typing import Optional

import typer

milp_app = typer.Typer(help="MILP family: collect expert branching samples, list distributions, label hardness.",
                       no_args_is_help=True)


@milp_app.command("collect")
def collect(
    distribution: str = typer.Option(..., "--distribution", "-d", help="Distribution name (see opsrl milp distributions), mix, mix:A,B or folder:PATH."),
    samples: int = typer.Option(1000, "--samples", "-n", help="Stop once the split holds this many samples."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel SCIP episodes."),
    split: str = typer.Option("train", "--split", help="train, val or test."),
    query_prob: float = typer.Option(0.05, "--query-prob", help="Probability of querying strong branching at a node."),
    per_episode: int = typer.Option(10, "--per-episode", help="Samples taken from one instance solve at most."),
    time_limit: float = typer.Option(120.0, "--time-limit", "-t", help="Time limit of one episode in seconds."),
    max_instances: Optional[int] = typer.Option(None, "--max-instances", help="Use only the first N instances of the split."),
) -> None:
    """Collect strong-branching samples (resumable: re-running continues where it stopped)."""
    from opsrl.core.errors import UsageError
    from opsrl.milp.collect import collect as run

    if samples < 1 or jobs < 1 or per_episode < 1:
        raise UsageError("--samples, --jobs and --per-episode must be positive integers")
    if not 0 <= query_prob <= 1:
        raise UsageError(f"--query-prob must lie in [0, 1], got {query_prob:g}")
    summary = run(distribution, samples, split=split, jobs=jobs, query_prob=query_prob, per_episode=per_episode,
                  time_limit=time_limit, max_instances=max_instances, progress=True)
    typer.echo(json.dumps(summary))


@milp_app.command("distributions")
def distributions() -> None:
    """List the built-in distributions (generator, parameters, splits)."""
    from opsrl.milp.distributions import catalogue

    for name, dist in catalogue().items():
        typer.echo(f"{name:<20} {dist.family:<11} {json.dumps(dist.params)}  splits {dist.split_sizes}")
    typer.echo(f"{'mix':<20} the four easy distributions in turn; mix:A,B,... any mix; folder:PATH a user folder")


@milp_app.command("label")
def label(
    distribution: str = typer.Option(..., "--distribution", "-d", help="Distribution to label."),
    count: int = typer.Option(5, "--count", "-n", help="Test instances to solve."),
    time_limit: float = typer.Option(1000.0, "--time-limit", "-t", help="SCIP default time limit per instance."),
    easy: float = typer.Option(100.0, "--easy", help="Easy below this many seconds."),
    hard: float = typer.Option(1000.0, "--hard", help="Hard beyond this many seconds."),
) -> None:
    """Label a distribution easy / medium / hard by SCIP default's solving time (Distributional MIPLIB)."""
    from opsrl.milp.distributions import label_hardness, resolve

    out = label_hardness(resolve(distribution), count=count, time_limit=time_limit, thresholds=(easy, hard))
    typer.echo(json.dumps({"label": out["label"], "median_s": out["median_s"]}))


@milp_app.command("accuracy")
def accuracy(
    checkpoint: str = typer.Option(..., "--checkpoint", "-c", help="Policy checkpoint (a file, or a shipped name such as setcover)."),
    distribution: Optional[str] = typer.Option(None, "--distribution", "-d", help="Distribution whose samples to score."),
    split: str = typer.Option("val", "--split", help="train, val or test samples."),
    data: Optional[str] = typer.Option(None, "--data", help="A sample folder (with train/ and val/, as opsrl train --data takes) instead of a distribution."),
) -> None:
    """Top-1/5/10 accuracy of a policy against strong branching, beside pseudo-cost and most-infeasible."""
    from pathlib import Path

    from opsrl.core.errors import UsageError
    from opsrl.milp.train import accuracy as run

    if (distribution is None) == (data is None):
        raise UsageError("opsrl milp accuracy needs exactly one of --distribution D or --data SAMPLE_FOLDER")
    out = run(checkpoint, distribution, split, Path(data) / split if data else None)
    typer.echo(json.dumps(out))
