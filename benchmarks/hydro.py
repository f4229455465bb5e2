"""Hydro benchmark: TS-DDR vs SDDP vs myopic, with the perfect-information bound, on paired scenarios.

Every policy is simulated on the same out-of-sample inflow paths of each instance, in this process,
and costed by the problem's ``evaluate`` (per-scenario costs: means, 95 % confidence intervals, and
paired differences against SDDP). Each (instance, solver) run is saved under results/hydro/ as soon
as it finishes, so a long benchmark runs in resumable chunks (``--solvers`` picks which); ``--table``
prints the markdown table from whatever runs are saved.

    python benchmarks/hydro.py --instances case3,synthetic --scenarios 500
    python benchmarks/hydro.py --instances bolivia --solvers sddp --scenarios 500 --sddp-iters 100
    python benchmarks/hydro.py --table
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from opsrl.core.files import atomic_write_text
from opsrl.hydro.problem import HYDRO, builtin_instance, scenario_costs
from opsrl.hydro.solvers import solve_myopic, solve_pi_lp, solve_tsddr

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "hydro"
SOLVERS = ("pi-lp", "sddp", "tsddr", "myopic")


def ci95(x: np.ndarray) -> float:
    return float(1.96 * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def instance(name: str, args: argparse.Namespace):
    inst = builtin_instance(name)
    for key in ("stages", "report"):
        value = getattr(args, key)
        if value:
            inst = HYDRO.override(inst, key, str(value))
    return HYDRO.override(inst, "scenarios", str(args.scenarios))


def run_sddp(inst, args):
    """SDDP trained in chunks up to ``--sddp-iters`` or ``--sddp-time`` seconds of training; after each chunk
    listed in ``--sddp-curve`` its policy is simulated on the first ``--curve-paths`` test paths (the
    time-to-cost curve), and at the end on all of them."""
    from opsrl.core.types import Status
    from opsrl.hydro.sddp import SDDP
    from opsrl.hydro.solvers import _solution

    start = time.perf_counter()
    algo = SDDP(inst.system, inst.stages, args.seed)
    paths = inst.test_paths()[: args.curve_paths]
    marks = sorted(set([c for c in args.sddp_curve if c < args.sddp_iters] + [args.sddp_iters]))
    curve, t_train = [], 0.0
    for mark in marks:
        t0 = time.perf_counter()
        algo.train(mark - algo.log.iterations, max(0.0, args.sddp_time - t_train))
        t_train += time.perf_counter() - t0
        if mark in args.sddp_curve or t_train >= args.sddp_time:
            out = algo.simulate(paths, inst.report)
            curve.append({"iterations": algo.log.iterations, "train_s": t_train,
                          "lower_bound": algo.log.lower_bounds[-1], "sim_cost": float(out["cost"].sum(axis=1).mean())})
            print(f"  sddp {algo.log.iterations} it, {t_train:.0f} s: LB {curve[-1]['lower_bound']:,.1f}, "
                  f"simulated on {len(paths)} paths {curve[-1]['sim_cost']:,.1f}", flush=True)
        if t_train >= args.sddp_time:
            break
    t1 = time.perf_counter()
    out = algo.simulate(inst.test_paths(), inst.report)
    per_dec = (time.perf_counter() - t1) / (inst.scenarios * inst.report)
    stats = {"iterations": algo.log.iterations, "lower_bound": algo.log.lower_bounds[-1], "train_s": t_train,
             "lp_solves": algo.log.lp_solves, "time_per_decision_ms": 1e3 * per_dec,
             "lower_bounds": algo.log.lower_bounds, "lb_times": algo.log.times, "time_to_cost": curve}
    return _solution(inst, out, Status.FEASIBLE, stats, start)


def run_one(name: str, solver: str, args: argparse.Namespace) -> dict:
    inst = instance(name, args)
    t0 = time.perf_counter()
    if solver == "myopic":
        sol = solve_myopic(inst, time_limit=1e9, seed=args.seed)
    elif solver == "pi-lp":
        sol = solve_pi_lp(inst, time_limit=1e9, seed=args.seed)
    elif solver == "sddp":
        sol = run_sddp(inst, args)
    else:
        ckpt = Path(args.checkpoints) / f"hydro_{name}.safetensors"
        sol = solve_tsddr(inst, time_limit=args.tsddr_time, seed=args.seed,
                          checkpoint=str(ckpt) if ckpt.is_file() else "")
    wall = time.perf_counter() - t0
    cost, viol = scenario_costs(inst, sol.data)
    stats = dict(sol.stats)
    rec = {"instance": name, "solver": solver, "stages": inst.stages, "report": inst.report,
           "scenarios": inst.scenarios, "k": inst.system.k, "load_scale": inst.system.load_scale,
           "network": "dc" if inst.system.has_network else "copper", "mean": float(cost.mean()),
           "ci95": ci95(cost), "feasible": not viol, "violations": viol, "wall_s": wall, "stats": stats,
           "costs": cost.tolist()}
    if solver == "tsddr" and stats.get("checkpoint"):
        ckpt = Path(args.checkpoints) / f"hydro_{name}.json"
        if ckpt.is_file():
            rec["train_metrics"] = json.loads(ckpt.read_text()).get("metrics", {})
    return rec


def table(names: list[str]) -> str:
    rows = ["| instance (stages sim/reported, paths) | policy | mean cost ± 95% CI | vs SDDP (paired, ± CI) "
            "| cheaper than SDDP | training / iterations | time per decision |",
            "|---|---|---|---|---|---|---|"]
    for name in names:
        recs = {s: json.loads((OUT / name / f"{s}.json").read_text()) for s in SOLVERS
                if (OUT / name / f"{s}.json").is_file()}
        if not recs:
            continue
        base = np.array(recs["sddp"]["costs"]) if "sddp" in recs else None
        for s, r in recs.items():
            c = np.array(r["costs"])
            rel = wins = "–"
            if base is not None and s != "sddp" and len(c) == len(base):
                d = (c - base) / base.mean() * 100
                rel = f"{d.mean():+.2f} % ± {ci95(d):.2f}"
                wins = f"{int((c < base - 1e-6).sum())}/{len(c)}"
            st = r["stats"]
            if s == "sddp":
                comp = f"{st.get('iterations')} it, {st.get('train_s', 0):.0f} s (LB {st.get('lower_bound', 0):,.0f})"
            elif s == "tsddr":
                m = r.get("train_metrics") or {}
                comp = (f"{m.get('iterations', st.get('train_iters'))} it, "
                        f"{m.get('train_s', st.get('trained_here_s', 0)) or 0:.0f} s")
            else:
                comp = "none"
            tpd = f"{st['time_per_decision_ms']:.2f} ms" if "time_per_decision_ms" in st else "–"
            flag = "" if r["feasible"] else " (INFEASIBLE)"
            rows.append(f"| {name} ({r['stages']}/{r['report']}, {r['scenarios']}) | {s}{flag} | "
                        f"{r['mean']:,.1f} ± {r['ci95']:,.1f} | {rel} | {wins} | {comp} | {tpd} |")
    for name in names:
        path = OUT / name / "sddp.json"
        if path.is_file():
            r = json.loads(path.read_text())
            curve = r["stats"].get("time_to_cost") or []
            if curve:
                rows.append("")
                rows.append(f"SDDP on {name}, simulated cost on the first paths vs training: " + "; ".join(
                    f"{c['iterations']} it / {c['train_s']:.0f} s -> {c['sim_cost']:,.0f} (LB {c['lower_bound']:,.0f})"
                    for c in curve))
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", default="case3,synthetic,bolivia")
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--scenarios", type=int, default=500)
    ap.add_argument("--stages", type=int, default=0, help="override the simulated horizon (0: the instance's)")
    ap.add_argument("--report", type=int, default=0, help="override the reported stages (0: the instance's)")
    ap.add_argument("--sddp-iters", type=int, default=200)
    ap.add_argument("--sddp-time", type=float, default=600.0)
    ap.add_argument("--sddp-curve", default="", help="iteration counts at which to simulate SDDP (time-to-cost)")
    ap.add_argument("--curve-paths", type=int, default=100)
    ap.add_argument("--tsddr-time", type=float, default=300.0, help="in-process training budget x2 (no checkpoint)")
    ap.add_argument("--checkpoints", default=str(ROOT / "opsrl" / "weights"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="case3 only, 50 paths, 30 SDDP iterations")
    ap.add_argument("--table", action="store_true", help="only print the table of saved runs")
    args = ap.parse_args()
    args.sddp_curve = [int(x) for x in args.sddp_curve.split(",") if x]
    if args.quick:
        args.instances, args.scenarios, args.sddp_iters, args.tsddr_time = "case3", 50, 30, 60.0
    names = args.instances.split(",")
    if not args.table:
        import torch

        torch.set_num_threads(1)
        for name in names:
            (OUT / name).mkdir(parents=True, exist_ok=True)
            for s in args.solvers.split(","):
                print(f"{name} / {s} ...", flush=True)
                rec = run_one(name, s, args)
                atomic_write_text(OUT / name / f"{s}.json", json.dumps(rec))
                print(f"  mean {rec['mean']:,.1f} ± {rec['ci95']:,.1f}  feasible {rec['feasible']}  "
                      f"({rec['wall_s']:.0f} s)", flush=True)
    text = table(names)
    atomic_write_text(OUT / "table.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
