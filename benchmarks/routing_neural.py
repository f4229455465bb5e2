"""BQ-NCO policies against the classical routing solvers, on generated test instances.

For one problem and a trained checkpoint: ``--count`` test instances of the training size
(``--test-seed``, never used for training) and ``--count-large`` of each larger ``--scales``
multiple; per method the mean gap % to the reference solver and the wall time per instance:

- ``bq greedy`` and ``bq beam K``: batched decoding (time = batch time / instances, after one
  warm-up batch, in ``--precision``: auto is bf16 where the hardware has it), on the ``--knn``
  nearest nodes of each step for instances larger than that (as BQ-NCO does at scale; unset, the
  checkpoint's own ``decoding.knn``);
- ``bq+ls``: the greedy solution polished by PyVRP's search, ``--ls-time`` s per instance in all
  (decoding included);
- ``ortools (same time)``: OR-Tools guided local search given the greedy time per instance as its
  limit (opsrl gives a heuristic at least 0.01 s; its wall time adds building the model and
  finishing the first solution), and ``--ortools-limits`` more limits, so that the table shows
  OR-Tools' gap against its wall time around the greedy's; then one more row with the limit lowered
  until OR-Tools' wall time per instance is the greedy's (within 5 %, or the 0.01 s floor). The
  classical solvers run ``--jobs`` instances at once on one core each; with one torch thread
  (``OMP_NUM_THREADS=1``, as the README's tables were run) equal time per instance is equal
  core-seconds, while more threads give the greedy batch more core-seconds than OR-Tools gets;
- ``--same-time`` solvers (default: pyvrp, hgs and ortools for cvrp) given the bq+ls time;
- the reference solver (``--reference``, its own time limit), which defines the gap.

With ``--files tsplib`` or ``--files cvrplib`` it runs the same methods on the benchmark files
(up to ``--max-nodes`` nodes) from the shared data folder, with gaps to the best-known solutions.

    python benchmarks/routing_neural.py --problem tsp --checkpoint opsrl/weights/bq_tsp.safetensors

prints the markdown table the README quotes; per-instance results go to results/ (``--out``), and
``--resume`` re-uses the classical runs found there (the neural methods are always decoded again).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

import opsrl
from opsrl.bench.runner import run_benchmark
from opsrl.core.data import data_dir
from opsrl.core.device import PRECISIONS
from opsrl.core.errors import OpsrlError
from opsrl.core.metrics import gap_pct
from opsrl.core.registry import get_solver
from opsrl.routing.solvers._shared import MIN_HEURISTIC_S

DEFAULT_REFERENCE = {"tsp": "lkh", "cvrp": "hgs", "op": "pyvrp", "kp": "ortools"}
DEFAULT_SAME_TIME = {"tsp": "", "cvrp": "pyvrp,hgs,ortools", "op": "", "kp": ""}
MIN_LIMIT = 0.001  # OR-Tools' time limit is in whole milliseconds
FILE_SETS = {"tsplib": ("tsp", "tsplib", "*.tsp"), "cvrplib": ("cvrp", "cvrplib-x", "X-n*.vrp")}


def _preload(modules: tuple[str, ...]) -> None:
    """Pool initializer: the polishing solver's packages imported before any run's clock starts, as
    the bench harness does for every solver."""
    for module in modules:
        importlib.import_module(module)


def _polish(args: tuple) -> tuple[float, float]:
    """Worker: PyVRP from the neural start for ``seconds``; returns (objective, wall seconds)."""
    inst, start, seconds = args
    from opsrl.routing.solvers.pyvrp_solver import solve_from

    t0 = time.perf_counter()
    sol = solve_from(inst, start, time_limit=seconds, seed=0)
    return opsrl.evaluate(inst, sol.data).objective, time.perf_counter() - t0


def _objectives(instances: list, solutions: list) -> np.ndarray:
    out = []
    for inst, sol in zip(instances, solutions):
        ev = opsrl.evaluate(inst, sol)
        out.append(ev.objective if ev.feasible else np.nan)
    return np.array(out)


def _classical(instances: list, solver: str, time_limit: float, jobs: int, out: Path,
               resume: bool = False) -> tuple[np.ndarray, float]:
    """Objectives (instance order) and mean wall time of a classical solver run through the bench harness;
    ``resume`` keeps the runs ``out`` already holds (the file name carries the solver and its limit)."""
    if out.exists() and not resume:
        out.unlink()
    df = run_benchmark(instances, [solver], time_limit=time_limit, seeds=[0], jobs=jobs, out=out, progress=False,
                       resume=resume and out.exists())
    # with ``resume`` the file may also hold runs of other instances (a larger --count earlier): only these count
    runs = df.set_index("instance").loc[[i.name for i in instances]]
    objs = np.where(runs["feasible"].to_numpy(bool), runs["objective"].to_numpy(float), np.nan)
    return objs, float(runs["wall_s"].mean())


def file_instances(which: str, max_nodes: int) -> list:
    """The benchmark files of one set with a best-known solution and at most ``max_nodes`` nodes."""
    problem, folder, pattern = FILE_SETS[which]
    root = data_dir()
    if root is None:
        raise SystemExit("benchmark data not found: set OPSRL_DATA or put it at ../shared/data")
    out = []
    for path in sorted((root / folder).glob(pattern)):
        try:
            inst = opsrl.load_instance(path, problem)
        except OpsrlError:
            continue  # e.g. TSPLIB files whose edge weights the neural features cannot read
        if inst.reference is not None and inst.num_nodes <= max_nodes and inst.edge_weight_type in ("EUC_2D", "EXACT"):
            out.append(inst)
    return sorted(out, key=lambda i: i.num_nodes)


def measure(args: argparse.Namespace, policy: object, device: str, label: str, insts: list,
            ref: np.ndarray, ref_label: str, ref_t: float) -> None:
    """One block of table rows: every method on ``insts``, gaps to ``ref``."""
    from opsrl.routing.decode import decode

    sense = opsrl.get_problem(args.problem).sense
    count = len(insts)

    def row(method: str, objs: np.ndarray, seconds: float) -> None:
        gaps = [gap_pct(o, r, sense) for o, r in zip(objs, ref)]
        print(f"| {shown} | {count} | {method} | {np.nanmean(gaps):.2f} | {seconds:.3f} |", flush=True)

    n = max(getattr(i, "num_nodes", i.size) for i in insts)  # kp: items
    wanted = policy.decoding_knn(args.knn)  # unset: the checkpoint's own decoding.knn
    knn = wanted if 0 < wanted < n - 2 else 0
    shown = f"{label} (knn {knn})" if knn else label
    decode(policy, insts[:8], knn=knn, device=device, precision=args.precision)  # one-off kernel set-up off the clock
    t0 = time.perf_counter()
    greedy = decode(policy, insts, knn=knn, device=device, precision=args.precision)
    t_greedy = (time.perf_counter() - t0) / count
    row("bq greedy", _objectives(insts, greedy), t_greedy)
    if args.beam > 1:
        t0 = time.perf_counter()
        beam = decode(policy, insts, beam=args.beam, knn=knn, device=device, batch=max(args.beam, 256),
                      precision=args.precision)
        row(f"bq beam {args.beam}", _objectives(insts, beam), (time.perf_counter() - t0) / count)
    tag = f"{args.problem}_{label}".replace(" ", "")
    if args.problem != "kp" and args.ls_time > 0:
        left = max(args.ls_time - t_greedy, 0.05)
        preload = get_solver(args.problem, "bq+ls").imports
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("fork"), initializer=_preload,
                                 initargs=(preload,)) as pool:
            polished = list(pool.map(_polish, [(i, s, left) for i, s in zip(insts, greedy)]))
        method = f"bq+ls ({args.ls_time:g} s)" if t_greedy < args.ls_time else f"bq+ls (greedy + {left:g} s)"
        row(method, np.array([p[0] for p in polished]),
            t_greedy + float(np.mean([p[1] for p in polished])))
        for solver in filter(None, args.same_time.split(",")):
            objs, wall = _classical(insts, solver, args.ls_time, args.jobs,
                                    args.out / f"neural_{tag}_{solver}_{args.ls_time:g}s.parquet", args.resume)
            row(f"{solver} ({args.ls_time:g} s limit)", objs, wall)
    if args.problem != "kp":
        def ortools(limit: float) -> tuple[np.ndarray, float]:
            return _classical(insts, "ortools", limit, args.jobs,
                              args.out / f"neural_{tag}_ortools_{limit:g}s.parquet", args.resume)

        same = max(t_greedy, MIN_LIMIT)
        for limit in sorted({same, *(float(x) for x in args.ortools_limits.split(",") if x)}):
            objs, wall = ortools(limit)
            row(f"ortools ({limit:.3g} s limit{', the greedy time' if limit == same else ''})", objs, wall)
            if limit == same:
                same_wall = wall
        if found := _ortools_at_wall(ortools, t_greedy, same, same_wall):
            limit, objs, wall = found
            row(f"ortools ({limit:.3g} s limit, wall time = the greedy time)", objs, wall)
    row(ref_label, ref, ref_t)


def _ortools_at_wall(ortools: Callable[[float], tuple[np.ndarray, float]], target: float, limit: float,
                     wall: float) -> tuple[float, np.ndarray, float] | None:
    """``ortools(limit)`` with the limit lowered until its mean wall time per instance (model building
    and the first solution included) is within 5 % of ``target``, starting from a run at ``limit``
    that took ``wall``: up to three more runs, each taking the last overrun off the limit. Returns the
    last run (limit, objectives, wall), or None when the first run was already within 5 %."""
    found = None
    for _ in range(3):
        if wall <= 1.05 * target:
            break
        new_limit = round(max(limit - (wall - target), MIN_HEURISTIC_S), 4)
        if new_limit >= limit:
            break  # already at OR-Tools' floor: the wall time cannot come down further
        limit = new_limit
        objs, wall = ortools(limit)
        found = (limit, objs, wall)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", required=True, choices=["tsp", "cvrp", "op", "kp"])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--size", type=int, default=None, help="training size (default: from the checkpoint)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--count-large", type=int, default=128)
    parser.add_argument("--scales", default="1,2,5,10", help="multiples of the training size ('' for none)")
    parser.add_argument("--test-seed", type=int, default=12345)
    parser.add_argument("--beam", type=int, default=16)
    parser.add_argument("--ls-time", type=float, default=1.0)
    parser.add_argument("--knn", type=int, default=None,
                        help="decode instances of more than K+2 nodes on the K nodes nearest the origin (0: all; "
                             "unset: the checkpoint's decoding.knn, else all)")
    parser.add_argument("--same-time", default=None, help="solvers given the bq+ls time (comma-separated)")
    parser.add_argument("--ortools-limits", default="",
                        help="more OR-Tools time limits to run beside the greedy time (comma-separated seconds)")
    parser.add_argument("--files", choices=sorted(FILE_SETS), default=None, help="also run on a benchmark file set")
    parser.add_argument("--max-nodes", type=int, default=201)
    parser.add_argument("--reference", default=None)
    parser.add_argument("--reference-time", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="decoding precision (auto: bf16 where the hardware has it)")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--resume", action="store_true",
                        help="keep the classical runs an earlier invocation left in --out (same solver and limit)")
    args = parser.parse_args()
    if args.same_time is None:
        args.same_time = DEFAULT_SAME_TIME[args.problem]

    import torch

    from opsrl.core.checkpoint import load_checkpoint
    from opsrl.core.device import amp_dtype, choose_device, precision_name

    device = choose_device(args.device)
    _, meta = load_checkpoint(args.checkpoint)
    size = args.size or int(meta.get("training", {}).get("size") or 100)
    policy = opsrl.load_policy(args.problem, args.checkpoint, device)
    reference = args.reference or DEFAULT_REFERENCE[args.problem]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# routing_neural {args.problem}: checkpoint {args.checkpoint.name}, device {device}, "
          f"precision {precision_name(amp_dtype(device, args.precision))}, "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores\n")
    print("| n | instances | method | mean gap % | time / instance (s) |")
    print("|---:|---:|---|---:|---:|")
    for scale in [int(s) for s in args.scales.split(",") if s]:
        n = size * scale
        count = args.count if scale == 1 else args.count_large
        insts = opsrl.generate(args.problem, n, seed=args.test_seed, count=count)
        ref, ref_t = _classical(insts, reference, args.reference_time, args.jobs,
                                args.out / f"neural_{args.problem}{n}_{reference}_{args.reference_time:g}s.parquet",
                                args.resume)
        measure(args, policy, device, str(n), insts, ref, f"{reference} (reference, {args.reference_time:g} s limit)", ref_t)
    if args.files:
        if FILE_SETS[args.files][0] != args.problem:
            raise SystemExit(f"--files {args.files} holds {FILE_SETS[args.files][0]} instances, not {args.problem}")
        insts = file_instances(args.files, args.max_nodes)
        ref = np.array([i.reference.value for i in insts])
        measure(args, policy, device, args.files, insts, ref, "best known", float("nan"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
