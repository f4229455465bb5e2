"""``opsrl list``: problems, the solvers of each, and the shipped checkpoints."""

from __future__ import annotations

import json
from importlib import resources

import typer


def shipped_checkpoints() -> list[dict]:
    """Metadata of every checkpoint shipped in opsrl/weights (their JSON sidecars)."""
    found = []
    for entry in sorted(resources.files("opsrl.weights").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            try:
                meta = json.loads(entry.read_text())
            except (OSError, ValueError):
                continue
            found.append({"name": entry.name[: -len(".json")], **{k: meta.get(k) for k in ("problem", "architecture")}})
    return found


def list_(as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.")) -> None:
    """List problems, solvers per problem and shipped checkpoints."""
    from opsrl.cli.common import print_json
    from opsrl.core.registry import get_problem, problem_names, solvers_for

    problems = []
    for name in problem_names():
        prob = get_problem(name)
        problems.append({"problem": name, "family": prob.family, "sense": prob.sense, "description": prob.description,
                         "default_solver": prob.default_solver,
                         "solvers": [{"name": s.name, "description": s.description, "exact": s.exact}
                                     for s in solvers_for(name)]})
    checkpoints = shipped_checkpoints()
    if as_json:
        print_json({"problems": problems, "checkpoints": checkpoints})
        return
    lines = []
    width = max((len(s["name"]) for p in problems for s in p["solvers"]), default=10)
    for p in problems:
        lines.append(f"{p['problem']} ({p['family']}, {p['sense']}imise): {p['description']}")
        for s in p["solvers"]:
            mark = "*" if s["name"] == p["default_solver"] else " "
            lines.append(f"  {mark} {s['name']:<{width}} {s['description']}")
    lines.append("checkpoints: " + (", ".join(c["name"] for c in checkpoints) if checkpoints else "none shipped yet"))
    lines.append("(* = default solver)")
    typer.echo("\n".join(lines))
