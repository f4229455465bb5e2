"""Label files: generated instances with near-optimal solutions, the training data of imitation learning.

A label file is an ``.npz`` batch as ``formats.save_batch`` writes it (the instances, each with its
``reference`` set to its label's objective, source ``label <solver> <time limit>s``) plus:

- tsp: ``tour`` int32 (B, N), a permutation of 0..N-1 rotated to start at 0;
- cvrp: ``order`` int32 (B, N), the customers 1..N in visiting order, route after route, and
  ``via_depot`` bool (B, N), True where the customer starts a new route (always at position 0);
- op: ``tour`` int32 (B, N), the visited nodes 1..N in order, padded with -1;
- kp: ``packed`` bool (B, N);
- ``objective`` float64 (B,) from ``evaluate``, ``label_solver`` (str) and ``label_time_limit`` (float).

``make_labels`` solves the instances with ``opsrl.bench.runner.run_benchmark`` (its worker processes,
hard time limits and resumable parquet, kept beside the label file as ``<out>.runs.parquet``), so an
interrupted labelling resumes where it stopped and a larger ``count`` labels only the new instances.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import InstanceFileError, OpsrlError, UsageError
from opsrl.core.types import Reference

LABEL_ARRAYS = {"tsp": ("tour",), "cvrp": ("order", "via_depot"), "op": ("tour",), "kp": ("packed",)}
META_ARRAYS = ("objective", "label_solver", "label_time_limit")


def runs_path(out: Path) -> Path:
    """Where ``make_labels`` keeps the solver runs behind the label file ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".runs.parquet")


def label_source(solver: str, time_limit: float) -> str:
    return f"label {solver} {time_limit:g}s"


def make_labels(problem: str, size: int, count: int, *, seed: int, solver: str, time_limit: float, jobs: int = 1,
                out: Path, resume: bool = False, params: dict[str, Any] | None = None,
                progress: bool = True) -> Path:
    """Generate ``count`` instances (``opsrl.generate(problem, size, seed=seed, count=count)``), solve each once
    with ``solver`` (seed ``seed``) under ``time_limit`` seconds, ``jobs`` at a time, and write the label file ``out``.

    Runs go to ``<out>.runs.parquet`` as they finish; with ``resume`` the runs already there are kept
    (same solver, time limit and options required) and only the missing ones are done. Instances whose
    run found no feasible solution are dropped, with a warning on stderr; none left is an OpsrlError.
    """
    import opsrl
    from opsrl.bench.runner import run_benchmark
    from opsrl.core.registry import get_problem, get_solver

    out = Path(out)
    if problem not in LABEL_ARRAYS:
        get_problem(problem)  # an unknown name gets the registry's message
        raise UsageError(f"labels are made for {', '.join(LABEL_ARRAYS)}, not {problem}")
    spec = get_solver(problem, solver)
    if spec.needs_torch:
        raise UsageError(f"solver {solver} is a neural policy; label with a classical solver")
    options = spec.check_params(params or {})
    for what, value in (("size", size), ("count", count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{what} must be a positive integer, got {value!r}")
    if out.suffix != ".npz":
        raise UsageError(f"{out}: a label file is an .npz batch; give a path ending in .npz")
    runs = runs_path(out)
    if not resume:
        for path in (out, runs):
            if path.exists():
                raise OpsrlError(f"{path}: already exists; pass --resume (resume=True) to continue the labelling, "
                                 "or choose another output file")
    elif runs.exists():
        _check_resumable(runs, solver, options)
    out.parent.mkdir(parents=True, exist_ok=True)

    instances = opsrl.generate(problem, size, seed=seed, count=count)
    df = run_benchmark(instances, [solver], time_limit=time_limit, seeds=[seed], jobs=jobs, out=runs,
                       resume=resume, params={solver: options} if options else None, progress=progress)
    mine = df[(df["problem"] == problem) & (df["solver"] == solver) & (df["seed"] == seed)]
    by_name = {str(r["instance"]): r for r in mine.to_dict("records")}
    kept, solutions, failed = [], [], {}
    prob = get_problem(problem)
    for inst in instances:
        row = by_name.get(inst.name)
        sol = json.loads(row["solution"]) if row is not None and isinstance(row.get("solution"), str) else None
        if row is not None and bool(row["feasible"]) and sol is not None and prob.evaluate(inst, sol).feasible:
            kept.append(inst)
            solutions.append(sol)
        else:
            status = "missing" if row is None else str(row["status"])
            failed[status] = failed.get(status, 0) + 1
    if failed:
        how = ", ".join(f"{k} {v}" for k, v in sorted(failed.items()))
        sys.stderr.write(f"opsrl: warning: {sum(failed.values())} of {count} instances have no feasible "
                         f"{solver} solution ({how}); dropped from {out} (runs in {runs})\n")
    if not kept:
        raise OpsrlError(f"{out}: no instance got a feasible {solver} solution within {time_limit:g} s; "
                         f"nothing to write (see the runs in {runs})")
    save_labels(problem, kept, solutions, out, solver, time_limit)
    return out


def _check_resumable(runs: Path, solver: str, options: dict[str, Any]) -> None:
    """The runs file holds this solver's runs with these options (its time limit is run_benchmark's check)."""
    from opsrl.bench.store import read_results

    df, _ = read_results(runs)
    if df.empty or "solver" not in df:
        return
    solvers = sorted({str(s) for s in df["solver"]})
    if solvers != [solver]:
        raise OpsrlError(f"{runs}: its runs are by {', '.join(solvers)}; resume with the same solver, not {solver}")
    wanted = json.dumps(options, sort_keys=True, default=str)
    if "params" in df and (given := sorted({str(p) for p in df["params"]})) != [wanted]:
        raise OpsrlError(f"{runs}: its runs used solver options {', '.join(given)}; resume with the same "
                         f"--param options, not {wanted}")


def save_labels(problem: str, instances: list[Any], solutions: list[Any], out: Path, solver: str,
                time_limit: float) -> None:
    """Write ``instances`` and their (feasible) ``solutions`` as the label file ``out``, atomically.

    Each instance's reference becomes its label's objective; a solution ``evaluate`` rejects is an OpsrlError.
    """
    from opsrl.core.registry import get_problem
    from opsrl.routing.formats import save_batch

    out = Path(out)
    if problem not in LABEL_ARRAYS:
        raise UsageError(f"labels are made for {', '.join(LABEL_ARRAYS)}, not {problem}")
    if len(instances) != len(solutions):
        raise OpsrlError(f"{out}: {len(instances)} instances but {len(solutions)} solutions")
    if not instances:
        raise OpsrlError(f"{out}: no labelled instances to write")
    prob = get_problem(problem)
    sizes = {inst.size for inst in instances}
    if len(sizes) != 1:
        raise OpsrlError(f"{out}: a label file holds instances of one size; got sizes {sorted(sizes)}")
    n = sizes.pop()
    objectives = np.empty(len(instances), dtype=np.float64)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in LABEL_ARRAYS[problem]}
    for k, (inst, sol) in enumerate(zip(instances, solutions)):
        ev = prob.evaluate(inst, sol)
        if not ev.feasible:
            raise OpsrlError(f"{out}: the solution of instance {inst.name} is infeasible: {'; '.join(ev.violations)}")
        objectives[k] = ev.objective
        for key, arr in _to_arrays(problem, sol, n).items():
            rows[key].append(arr)
    source = label_source(solver, time_limit)
    labelled = [dataclasses.replace(inst, reference=Reference(float(obj), source))
                for inst, obj in zip(instances, objectives)]
    extra: dict[str, np.ndarray] = {key: np.stack(arrs) for key, arrs in rows.items()}
    extra.update(objective=objectives, label_solver=np.array(str(solver)),
                 label_time_limit=np.array(float(time_limit), dtype=np.float64))
    save_batch(problem, labelled, out, extra=extra)


def _to_arrays(problem: str, solution: Any, n: int) -> dict[str, np.ndarray]:
    """One feasible solution as its rows of the label arrays (size ``n``)."""
    if problem == "tsp":
        tour = [int(v) for v in solution]
        k = tour.index(0)
        return {"tour": np.array(tour[k:] + tour[:k], dtype=np.int32)}
    if problem == "cvrp":
        order, starts = [], []
        for route in solution:
            route = [int(v) for v in route]
            if route:
                starts.append(len(order))
                order += route
        via = np.zeros(n, dtype=bool)
        via[starts] = True
        return {"order": np.array(order, dtype=np.int32), "via_depot": via}
    if problem == "op":
        tour = np.full(n, -1, dtype=np.int32)
        tour[:len(solution)] = [int(v) for v in solution]
        return {"tour": tour}
    packed = np.zeros(n, dtype=bool)
    packed[[int(v) for v in solution]] = True
    return {"packed": packed}


def label_solution(problem: str, arrays: dict[str, np.ndarray], k: int) -> Any:
    """Instance ``k``'s label as a solution in opsrl's format (the inverse of the array conversion)."""
    if problem == "tsp":
        return [int(v) for v in arrays["tour"][k]]
    if problem == "cvrp":
        routes: list[list[int]] = []
        for node, new in zip(arrays["order"][k], arrays["via_depot"][k]):
            if new or not routes:
                routes.append([])
            routes[-1].append(int(node))
        return routes
    if problem == "op":
        return [int(v) for v in arrays["tour"][k] if v >= 0]
    return [int(i) for i in np.flatnonzero(arrays["packed"][k])]


def load_labels(path: Path) -> tuple[str, list[Any], dict[str, np.ndarray]]:
    """The problem, instances and arrays of a label file, checked: shapes, dtypes, and that each row is a
    valid solution structure (a permutation, ...); a bad file is a one-line error naming it and the array.

    The arrays are the labels (``tour``, ``order``/``via_depot``, ``packed``), ``objective``,
    ``label_solver``, ``label_time_limit``, and the instances' own stacked fields (``coords``,
    ``demands``, ``capacity``, ``prizes``, ``max_length``, ``values``, ``weights``) for batched use."""
    from opsrl.routing.formats import FIELDS, load_batch

    path = Path(path)
    if not path.is_file():
        raise OpsrlError(f"{path}: label file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            problem = str(z["problem"]) if "problem" in z.files else ""
            keys = [k for k in (*LABEL_ARRAYS.get(problem, ()), *META_ARRAYS, *FIELDS.get(problem, ()))
                    if k in z.files]
            arrays = {k: z[k] for k in keys}
    except Exception as exc:
        raise InstanceFileError(path, f"not a readable label file ({type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    if problem not in LABEL_ARRAYS:
        raise InstanceFileError(path, f"array 'problem' is {problem or 'missing'}; a label file holds one of "
                                      f"{', '.join(LABEL_ARRAYS)}")
    for key in (*LABEL_ARRAYS[problem], *META_ARRAYS):
        if key not in arrays:
            raise InstanceFileError(path, f"missing label array {key!r} (not a label file? make one with opsrl label)")
    instances = load_batch(problem, path)
    _check_arrays(path, problem, arrays, len(instances), instances[0].size if instances else 0)
    return problem, instances, arrays


def _check_arrays(path: Path, problem: str, arrays: dict[str, np.ndarray], count: int, n: int) -> None:
    def fail(key: str, what: str) -> None:
        raise InstanceFileError(path, f"label array {key!r} {what}")

    for key in LABEL_ARRAYS[problem]:
        arr = arrays[key]
        if arr.shape != (count, n):
            fail(key, f"has shape {arr.shape}, expected ({count}, {n}) (instances x size)")
        boolean = key in ("via_depot", "packed")
        if boolean and arr.dtype != np.bool_:
            fail(key, f"has dtype {arr.dtype}, expected bool")
        if not boolean and not np.issubdtype(arr.dtype, np.integer):
            fail(key, f"has dtype {arr.dtype}, expected integers")
    obj = arrays["objective"]
    if obj.shape != (count,) or not np.issubdtype(obj.dtype, np.floating):
        fail("objective", f"has shape {obj.shape} and dtype {obj.dtype}, expected ({count},) floats")
    if not np.all(np.isfinite(obj)):
        fail("objective", f"is not finite in row {int(np.flatnonzero(~np.isfinite(obj))[0])}")
    if arrays["label_solver"].shape != () or arrays["label_solver"].dtype.kind != "U":
        fail("label_solver", "must be one string")
    tl = arrays["label_time_limit"]
    if tl.shape != () or not np.issubdtype(tl.dtype, np.number) or not math.isfinite(float(tl)):
        fail("label_time_limit", "must be one number")
    if count == 0:
        return
    if problem == "tsp":
        tour = arrays["tour"]
        _check_permutation(tour, np.arange(n), "tour", fail, "0..N-1")
        if (bad := np.flatnonzero(tour[:, 0] != 0)).size:
            fail("tour", f"row {int(bad[0])} does not start at node 0")
    elif problem == "cvrp":
        _check_permutation(arrays["order"], np.arange(1, n + 1), "order", fail, "the customers 1..N")
        if (bad := np.flatnonzero(~arrays["via_depot"][:, 0])).size:
            fail("via_depot", f"row {int(bad[0])}: the first customer must start a route (True at position 0)")
    elif problem == "op":
        tour = arrays["tour"]
        if (bad := np.argwhere((tour != -1) & ((tour < 1) | (tour > n)))).size:
            r, c = (int(v) for v in bad[0])
            fail("tour", f"row {r} holds {int(tour[r, c])} at position {c}; expected nodes 1..{n} or -1 padding")
        pad = tour == -1
        if (bad := np.flatnonzero((pad[:, :-1] & ~pad[:, 1:]).any(axis=1))).size:
            fail("tour", f"row {int(bad[0])} has a node after the -1 padding")
        visited = np.where(pad, 0, tour)
        ordered = np.sort(visited, axis=1)
        if (bad := np.flatnonzero(((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] > 0)).any(axis=1))).size:
            fail("tour", f"row {int(bad[0])} visits a node more than once")


def _check_permutation(arr: np.ndarray, expected: np.ndarray, key: str, fail: Any, what: str) -> None:
    wrong = np.flatnonzero((np.sort(arr, axis=1) != expected[None, :]).any(axis=1))
    if wrong.size:
        fail(key, f"row {int(wrong[0])} is not a permutation of {what} ({wrong.size} such rows)")
