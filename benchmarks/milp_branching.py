"""Learned branching against SCIP's own rules on the test splits of the MILP distributions.

Every solver runs SCIP under the same protocol (learn2branch: cuts at the root only, no restarts;
one LP thread; seed = run seed) in this process, one run at a time, on the same instances:

    python benchmarks/milp_branching.py --distributions setcover-easy,setcover-medium \
        --instances 20 --seeds 3 --time-limit 300

writes results/milp/branching.csv (resumable: finished runs are skipped) and prints, per
distribution and solver: solved count, shifted geometric means of solving time (shift 1 s) and
nodes (shift 1) over all runs (an unsolved run counts its time limit and its nodes so far), wins
(fastest solved run of an instance x seed), and for scip-gnn the time split and the break-even
against SCIP default.
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

from opsrl.core.errors import OpsrlError
from opsrl.core.metrics import shifted_geomean
from opsrl.core.run import run_solver
from opsrl.milp.distributions import resolve

FIELDS = ["distribution", "instance", "solver", "label", "seed", "status", "objective", "nodes", "solver_s",
          "wall_s", "gap", "pdi", "feature_s", "inference_s", "branch_calls", "time_limit"]


def parse_solvers(text: str) -> list[tuple[str, str, dict]]:
    """``scip,scip-gnn:milp_setcover`` -> [(label, solver, params)]: a checkpoint after a colon."""
    out = []
    for item in text.split(","):
        name, _, ckpt = item.partition(":")
        params = {"learn2branch": True}
        if ckpt:
            params["checkpoint"] = ckpt
        out.append((item if ckpt else name, name, params))
    return out


def run(args: argparse.Namespace) -> list[dict]:
    out = args.out / "branching.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(out.open())) if out.is_file() else []
    done = {(r["distribution"], r["instance"], r["label"], r["seed"], r["time_limit"]) for r in rows}
    solvers = parse_solvers(args.solvers)
    write_header = not out.is_file()
    with out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if write_header:
            writer.writeheader()
        for dist_name in args.distributions.split(","):
            dist = resolve(dist_name)
            for inst in dist.instances("test", args.instances):
                for seed in range(args.seeds):
                    for label, solver, params in solvers:
                        if solver == "scip-fsb" and dist_name not in args.fsb_on.split(","):
                            continue
                        key = (dist_name, inst.name, label, str(seed), str(float(args.time_limit)))
                        if key in done:
                            continue
                        try:
                            res = run_solver(inst, solver, time_limit=args.time_limit, seed=seed, params=params,
                                             isolate=False)
                        except OpsrlError as exc:  # e.g. a checkpoint that is not there: say so, go on
                            print(f"{dist_name} {inst.name} {label}: {exc}", flush=True)
                            continue
                        s = res.stats
                        row = {"distribution": dist_name, "instance": inst.name, "solver": solver, "label": label,
                               "seed": seed, "status": str(res.status), "objective": res.objective,
                               "nodes": s.get("nodes", math.nan), "solver_s": s.get("solver_s", math.nan),
                               "wall_s": res.wall_s, "gap": s.get("gap", math.nan),
                               "pdi": s.get("primal_dual_integral", math.nan),
                               "feature_s": s.get("feature_s", ""), "inference_s": s.get("inference_s", ""),
                               "branch_calls": s.get("branch_calls", ""), "time_limit": float(args.time_limit)}
                        writer.writerow(row)
                        fh.flush()
                        rows.append({k: str(v) for k, v in row.items()})
                        print(f"{dist_name} {inst.name} seed {seed} {label}: {res.status} obj {res.objective:.6g} "
                              f"nodes {row['nodes']} {row['solver_s']:.2f} s", flush=True)
    return rows


def summarise(rows: list[dict], time_limit: float) -> str:
    """The markdown table: per distribution and solver label."""
    rows = [r for r in rows if float(r["time_limit"]) == time_limit]
    by = defaultdict(list)
    for r in rows:
        by[(r["distribution"], r["label"])].append(r)
    best: dict[tuple, tuple[float, str]] = {}
    for r in rows:
        if r["status"] == "optimal":
            k = (r["distribution"], r["instance"], r["seed"])
            t = float(r["solver_s"])
            if k not in best or t < best[k][0]:
                best[k] = (t, r["label"])
    win_count = defaultdict(int)
    for (d, _, _), (_, label) in best.items():
        win_count[(d, label)] += 1
    lines = ["| distribution | solver | solved | time (s, sgm) | nodes (sgm) | wins | ms/node | feature+inference ms/node |",
             "|---|---|---|---|---|---|---|---|"]
    for (d, label), rs in sorted(by.items()):
        solved = sum(r["status"] == "optimal" for r in rs)
        times = [float(r["solver_s"]) if r["status"] == "optimal" else time_limit for r in rs]
        nodes = [max(float(r["nodes"]), 0.0) for r in rs]
        per_node = sum(float(r["solver_s"]) for r in rs) / max(sum(nodes), 1) * 1000
        extra = "-"
        if rs[0]["feature_s"] not in ("", None):
            calls = sum(float(r["branch_calls"] or 0) for r in rs)
            fi = sum(float(r["feature_s"]) + float(r["inference_s"]) for r in rs)
            extra = f"{fi / max(calls, 1) * 1000:.2f}"
        lines.append(f"| {d} | {label} | {solved}/{len(rs)} | {shifted_geomean(times, 1.0):.2f} | "
                     f"{shifted_geomean(nodes, 1.0):.1f} | {win_count[(d, label)]} | {per_node:.1f} | {extra} |")
    return "\n".join(lines)


def break_even(rows: list[dict], time_limit: float) -> str:
    """Per distribution and learned solver: time ratio to SCIP default and the node ratio that would tie."""
    rows = [r for r in rows if float(r["time_limit"]) == time_limit]
    out = []
    dists = sorted({r["distribution"] for r in rows})
    for d in dists:
        ref = {(r["instance"], r["seed"]): r for r in rows if r["distribution"] == d and r["label"] == "scip"}
        for label in sorted({r["label"] for r in rows if r["distribution"] == d and r["solver"] == "scip-gnn"}):
            pairs = [(ref[(r["instance"], r["seed"])], r) for r in rows
                     if r["distribution"] == d and r["label"] == label and (r["instance"], r["seed"]) in ref]
            pairs = [(a, b) for a, b in pairs if a["status"] == "optimal" and b["status"] == "optimal"]
            if not pairs:
                continue
            t_ratio = math.exp(sum(math.log((float(b["solver_s"]) + 1) / (float(a["solver_s"]) + 1)) for a, b in pairs)
                               / len(pairs))
            n_ratio = math.exp(sum(math.log((float(b["nodes"]) + 1) / (float(a["nodes"]) + 1)) for a, b in pairs)
                               / len(pairs))
            scip_ms = sum(float(a["solver_s"]) for a, _ in pairs) / max(sum(float(a["nodes"]) for a, _ in pairs), 1)
            gnn_ms = sum(float(b["solver_s"]) for _, b in pairs) / max(sum(float(b["nodes"]) for _, b in pairs), 1)
            out.append(f"- {d}, {label}: time ratio to scip {t_ratio:.2f} (shifted geomean over {len(pairs)} runs both "
                       f"solved), node ratio {n_ratio:.2f}; {gnn_ms * 1000:.1f} ms/node against scip's "
                       f"{scip_ms * 1000:.1f} ms/node, so it breaks even in time when its trees are at most "
                       f"{scip_ms / max(gnn_ms, 1e-9):.2f} x SCIP default's node count")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distributions", default="setcover-easy,setcover-medium")
    parser.add_argument("--solvers", default="scip,scip-pscost,scip-fsb,scip-gnn")
    parser.add_argument("--fsb-on", default="setcover-easy", help="distributions where scip-fsb runs (it is slow)")
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=Path("results/milp"))
    parser.add_argument("--quick", action="store_true", help="2 easy set cover instances, 1 seed, 60 s")
    parser.add_argument("--summary-only", action="store_true", help="print the table of the stored runs")
    args = parser.parse_args()
    if args.quick:
        args.distributions, args.instances, args.seeds, args.time_limit = "setcover-easy", 2, 1, 60.0
    t0 = time.perf_counter()
    if "scip-gnn" in args.solvers:
        import opsrl.milp.policy  # noqa: F401  (torch imported once, before any run is timed)
    if args.summary_only:
        path = args.out / "branching.csv"
        rows = list(csv.DictReader(path.open())) if path.is_file() else []
    else:
        rows = run(args)
    table = summarise(rows, args.time_limit)
    text = (f"MILP branching, time limit {args.time_limit:g} s, learn2branch protocol, one LP thread, "
            f"{platform.processor() or platform.machine()} ({time.perf_counter() - t0:.0f} s)\n\n{table}\n\n"
            f"{break_even(rows, args.time_limit)}\n")
    (args.out / "branching.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
