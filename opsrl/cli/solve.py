"""``opsrl solve``: one instance, one solver; prints cost, time and gap to the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from opsrl.cli.common import err, fmt_num, load_one, print_json, resolve_problem


def solve(
    problem: Optional[str] = typer.Option(None, "--problem", "-p", help="Problem name (see opsrl list)."),
    instance: Optional[str] = typer.Option(None, "--instance", "-i", help="Instance file or built-in name; generated when absent."),
    size: int = typer.Option(100, "--size", "-n", help="Size of the generated instance (customers, nodes or items)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator and of the solver."),
    solver: Optional[str] = typer.Option(None, "--solver", "-s", help="Solver name; the problem's default when absent."),
    time_limit: float = typer.Option(10.0, "--time-limit", "-t", help="Time limit in seconds."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="Solver option key=value (repeatable)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Instance field override key=value (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the solution here (CVRPLIB .sol for cvrp, JSON otherwise)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw the solution to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    compare: Optional[str] = typer.Option(None, "--compare", help="Also run this solver on the same instance and print both side by side ('none': never; by default a shipped neural policy is compared with the problem's classical solver)."),
) -> None:
    """Solve one instance and print problem, solver, status, objective, reference, gap and time."""
    import opsrl
    from opsrl.core.errors import UsageError
    from opsrl.core.registry import get_problem, get_solver, parse_assignments

    if time_limit <= 0:
        raise UsageError(f"--time-limit must be a positive number of seconds, got {time_limit:g}")
    name = resolve_problem(problem, instance)
    prob = get_problem(name)
    named = solver is not None
    solver = solver or opsrl.api.default_solver(name)
    spec = get_solver(name, solver)
    params = spec.check_params(parse_assignments(param, "--param"))
    if compare is None and not named and spec.needs_torch:  # a shipped policy shows how it compares
        compare = prob.default_compare or None
    compare = None if compare == "none" else compare
    if compare is not None:
        get_solver(name, compare)
    inst = load_one(name, instance, size, seed, set_)
    result = opsrl.solve(inst, solver, time_limit=time_limit, seed=seed, params=params)
    other = None if compare is None else opsrl.solve(inst, compare, time_limit=time_limit, seed=seed)

    if out is not None and result.solution is not None:
        prob.save_solution(inst, result.solution, result.objective, out)
    if plot is not None and result.solution is not None:
        prob.plot(inst, result.solution, plot, title=f"{inst.name} {solver}: {fmt_num(result.objective)}")

    if as_json:
        data = result.to_json()
        data["stats"] = {k: v for k, v in data["stats"].items() if k != "traceback"}
        if other is not None:
            data["compare"] = other.to_json()
            data["compare"]["stats"] = {k: v for k, v in data["compare"]["stats"].items() if k != "traceback"}
        print_json(data)
    else:
        source = f" ({result.reference_source})" if result.reference is not None else ""
        rows = [("problem", name), ("instance", inst.name), ("solver", solver), ("status", str(result.status)),
                ("feasible", "yes" if result.feasible else "no"),
                ("objective", fmt_num(result.objective, 10)),
                ("reference", fmt_num(result.reference, 10) + source),
                ("gap", "-" if result.reference is None or not result.feasible else f"{result.gap_pct:.3f} %"),
                ("time", f"{result.wall_s:.2f} s (limit {time_limit:g} s)")]
        if out is not None and result.solution is not None:
            rows.append(("solution", str(out)))
        if plot is not None and result.solution is not None:
            rows.append(("plot", str(plot)))
        typer.echo("\n".join(f"{k:<10} {v}" for k, v in rows))
        if other is not None:
            typer.echo(_side_by_side(result, other))
    if result.message:
        err(f"{solver}: {result.message}")
    if str(result.status) == "error":
        raise typer.Exit(1)
    if result.solution is None and (out is not None or plot is not None):
        err(f"{solver} found no solution in {time_limit:g} s: nothing written to --out/--plot")


def _side_by_side(a: object, b: object) -> str:
    """Two runs of one instance in columns: status, objective, nodes, solver and wall time."""
    from opsrl.cli.common import fmt_num

    def col(r: object) -> list[str]:
        stats = r.stats
        return [r.solver, str(r.status), fmt_num(r.objective, 10), fmt_num(stats.get("nodes")),
                fmt_num(stats.get("solver_s"), 4), f"{r.wall_s:.2f}"]

    names = ["solver", "status", "objective", "nodes", "solver s", "wall s"]
    left, right = col(a), col(b)
    width = max(12, *(len(x) for x in left)) + 2
    lines = ["", "compare"] + [f"{n:<10} {x:<{width}}{y}" for n, x, y in zip(names, left, right)]
    return "\n".join(lines)
