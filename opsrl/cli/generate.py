"""``opsrl generate``: seeded random instances written as files, a folder of files, or an .npz batch."""

from __future__ import annotations

from pathlib import Path

import typer


def generate(
    problem: str = typer.Option(..., "--problem", "-p", help="Problem name."),
    size: int = typer.Option(..., "--size", "-n", help="Customers, nodes or items per instance."),
    count: int = typer.Option(1, "--count", "-c", help="How many instances."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator."),
    out: Path = typer.Option(..., "--out", "-o", help="A file (.tsp/.vrp/.json for one, .npz for a batch) or a folder."),
) -> None:
    """Generate instances with the community conventions and write them."""
    import opsrl
    from opsrl.core.errors import UsageError
    from opsrl.core.registry import get_problem

    prob = get_problem(problem)
    if size < 1 or count < 1:
        raise UsageError(f"--size and --count must be positive integers, got size {size}, count {count}")
    instances = opsrl.generate(problem, size=size, seed=seed, count=count)
    if out.suffix:
        if out.suffix != ".npz" and count > 1:
            raise UsageError(f"--out {out}: {count} instances need an .npz batch or a folder (no suffix)")
        out.parent.mkdir(parents=True, exist_ok=True)
        prob.save(instances, out)
        written = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for inst in instances:
            path = out / f"{inst.name}{prob.native_suffix}"
            prob.save([inst], path)
            written.append(path)
    plural = "s" if count > 1 else ""
    typer.echo(f"wrote {len(written) if not out.suffix else count} {problem} instance{plural} of size {size} to {out}")
