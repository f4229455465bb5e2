"""Inventory benchmark: HDPO against the exact and classical references, same test scenarios.

Parts (run each under the team lock; every part resumes from results/inventory/<part>.json and stops
after --budget seconds, so a long part runs as several short chunks):
  dp         value iteration on the 16 lost-sales instances against Zipkin's optima (about 1 min)
  grid       one store, lost sales, p in {4,9,19,39} x L in {1..4}: HDPO (shipped checkpoints, trained
             here with --train when missing) vs the DP optimum; base-stock and capped base-stock (--classical)
  backlog    one backlogged store: HDPO vs the closed-form optimum
  serial     4-location serial system: HDPO vs Clark-Scarf echelon stock
  warehouse  one warehouse + n stores: MLP vs GNN at several training-set sizes (data efficiency)

    flock /tmp/opsrl-heavy.lock python benchmarks/inventory.py --part grid --train --budget 780
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "inventory"
GRID_P = (4, 9, 19, 39)
GRID_L = (1, 2, 3, 4)


def load(part: str) -> dict:
    path = OUT / f"{part}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def store(part: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / f"{part}.json.partial"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, OUT / f"{part}.json")


def train_shipped(setting: str, sets: dict, policy: str, steps: int, batch: int, lr: float, out: Path,
                  seed: int = 0) -> dict:
    """Train through the same entry point as ``opsrl train`` (so the sidecar's recipe is exact)."""
    from opsrl.core.train_options import TrainOptions
    from opsrl.inventory.train import train_from_options

    opts = TrainOptions(problem="inventory", out=out, device="cpu", seed=seed, progress=False, setting=setting,
                        policy=policy, steps=steps, batch=batch, lr=lr, sets={k: str(v) for k, v in sets.items()})
    metrics = train_from_options(opts)
    curve = Path(metrics["curve"])
    if curve.parent != OUT / "curves":
        (OUT / "curves").mkdir(parents=True, exist_ok=True)
        shutil.move(str(curve), OUT / "curves" / curve.name)
    return metrics


def solve(inst, solver: str, **params) -> dict:
    from opsrl.core.run import run_solver

    r = run_solver(inst, solver, time_limit=None, isolate=False, params=params)
    return {"objective": r.objective, "feasible": r.feasible, "wall_s": r.wall_s, "status": str(r.status),
            "stats": {k: v for k, v in r.stats.items() if isinstance(v, (int, float, str, list))}}


def part_grid(args: argparse.Namespace, deadline: float) -> None:
    from opsrl.inventory.policy import shipped_checkpoint
    from opsrl.inventory.problem import build

    data = load("grid")
    order = [(9, 2)] + [(p, L) for L in GRID_L for p in GRID_P if (p, L) != (9, 2)]
    for p, L in order:
        key = f"p{p}_L{L}"
        if args.only and key not in args.only:
            continue
        row = data.get(key, {})
        inst = build("one_store_lost", p=p, lead_time=L, **(_quick() if args.quick else {}))
        ckpt = shipped_checkpoint(build("one_store_lost", p=p, lead_time=L))
        if time.time() > deadline:
            print(f"budget spent; rerun to resume at {key}", file=sys.stderr)
            break
        if not ckpt.is_file() and args.train:
            t0 = time.perf_counter()
            left = deadline - time.time()
            if left < 120:
                print(f"budget nearly spent; rerun to resume at {key}", file=sys.stderr)
                break
            sets = {"p": p, "lead_time": L, "hidden": args.hidden, "time_budget": int(min(args.train_budget, left - 60))}
            row["train"] = train_shipped("one_store_lost", sets, "mlp", args.steps, args.batch, args.lr, ckpt)
            row["train"]["wall_total_s"] = time.perf_counter() - t0
            row.pop("hdpo", None)
        if "dp" not in row:
            row["dp"] = solve(inst, "dp")
        if ckpt.is_file() and "hdpo" not in row:
            row["hdpo"] = solve(inst, "hdpo")
            meta = json.loads(ckpt.with_suffix(".json").read_text())
            row["train_metrics"] = meta["metrics"]
        if args.classical:
            for name in ("base-stock", "capped-base-stock"):
                if name not in row:
                    row[name] = solve(inst, name)
        data[key] = row
        store("grid", data)
        print(key, {k: round(v["objective"], 4) for k, v in row.items() if isinstance(v, dict) and "objective" in v},
              file=sys.stderr, flush=True)


def _quick() -> dict:
    return {"test_scenarios": 256, "test_periods": 200, "test_warmup": 50}


def part_dp(args: argparse.Namespace, deadline: float) -> None:
    """Value iteration on all 16 lost-sales instances against Zipkin's published optima (no simulation)."""
    from opsrl.inventory.solvers import lost_sales_dp

    data = load("dp")
    for L in GRID_L:
        for p in GRID_P:
            key = f"p{p}_L{L}"
            if key in data or time.time() > deadline:
                continue
            t0 = time.perf_counter()
            g, table, S, A = lost_sales_dp(float(p), 1.0, 5.0, L)
            data[key] = {"p": p, "L": L, "cost": g, "states": int(table.size), "order_bound": A,
                         "position_bound": S, "wall_s": time.perf_counter() - t0}
            store("dp", data)


def part_backlog(args: argparse.Namespace, deadline: float) -> None:
    from opsrl.inventory.problem import build

    data = load("backlog")
    leads = (1, 4) if args.quick else (1, 4, 7, 10, 15, 20)
    for L in leads:
        key = f"p4_L{L}"
        if key in data and "hdpo" in data[key] or time.time() > deadline:
            continue
        inst = build("one_store_backlog", p=4, lead_time=L)
        row = {"closed_form_value": inst.reference.value, "closed-form": solve(inst, "closed-form")}
        out = OUT / "ckpt" / f"backlog_L{L}.safetensors"
        row["train"] = train_shipped("one_store_backlog", {"p": 4, "lead_time": L, "hidden": args.hidden}, "mlp",
                                     args.steps, args.batch, args.lr, out)
        row["hdpo"] = solve(inst, "hdpo", checkpoint=str(out))
        data[key] = row
        store("backlog", data)
        print(key, row["closed-form"]["objective"], row["hdpo"]["objective"], file=sys.stderr, flush=True)


def part_serial(args: argparse.Namespace, deadline: float) -> None:
    from opsrl.inventory.policy import shipped_checkpoint
    from opsrl.inventory.problem import build

    data = load("serial")
    inst = build("serial")
    ckpt = shipped_checkpoint(inst)
    if "echelon-stock" not in data:
        data["echelon-stock"] = solve(inst, "echelon-stock")
        store("serial", data)
    if not ckpt.is_file() and args.train:
        sets = {"hidden": args.hidden, "time_budget": int(args.train_budget)}
        data["train"] = train_shipped("serial", sets, args.policy or "mlp", args.steps, args.batch, args.lr, ckpt)
        data.pop("hdpo", None)
    if ckpt.is_file() and "hdpo" not in data:
        data["hdpo"] = solve(inst, "hdpo")
    if args.classical and "base-stock" not in data:
        data["base-stock"] = solve(inst, "base-stock")
    store("serial", data)


def part_warehouse(args: argparse.Namespace, deadline: float) -> None:
    from opsrl.inventory.policy import shipped_checkpoint
    from opsrl.inventory.problem import build

    data = load("warehouse")
    sizes = args.stores or [10]
    counts = args.scenarios or [128]
    for n in sizes:
        inst = build("one_warehouse", n_stores=n)
        key0 = f"n{n}"
        row = data.setdefault(key0, {})
        if "base-stock" not in row and args.classical:
            row["base-stock"] = solve(inst, "base-stock")
            store("warehouse", data)
        for count in counts:
            for kind in ("mlp", "gnn"):
                key = f"{kind}_{count}"
                if key in row or time.time() > deadline:
                    continue
                ship = n == 10 and count == 128 and kind == "gnn"
                out = shipped_checkpoint(inst) if ship else OUT / "ckpt" / f"warehouse_n{n}_{kind}_{count}.safetensors"
                left = deadline - time.time()
                if left < 120:
                    break
                sets = {"n_stores": n, "train_scenarios": count, "hidden": args.hidden,
                        "time_budget": int(min(args.train_budget, left - 60))}
                if kind == "gnn":
                    sets["rounds"] = args.rounds
                entry = {"train": train_shipped("one_warehouse", sets, kind, args.steps, args.batch, args.lr, out)}
                entry["hdpo"] = solve(inst, "hdpo", checkpoint=str(out))
                row[key] = entry
                store("warehouse", data)
                print(key0, key, entry["hdpo"]["objective"], file=sys.stderr, flush=True)


def table(part: str) -> str:
    data = load(part)
    lines = []
    if part == "dp":
        from opsrl.inventory.problem import ZIPKIN

        lines += ["| p | L | DP (value iteration) | Zipkin | match to 2 decimals | states | s |", "|---|---|---|---|---|---|---|"]
        for L in GRID_L:
            for p in GRID_P:
                r = data.get(f"p{p}_L{L}")
                if r:
                    ok = abs(r["cost"] - ZIPKIN[(p, L)]) <= 0.005 + 1e-9
                    lines.append(f"| {p} | {L} | {r['cost']:.4f} | {ZIPKIN[(p, L)]:.2f} | {'yes' if ok else 'NO'} | "
                                 f"{r['states']} | {r['wall_s']:.1f} |")
    elif part == "grid":
        lines += ["| p | L | Zipkin | DP (sim) | HDPO (sim) | gap to DP, same scenarios | base-stock gap | capped gap | train s | s to 1 % dev gap |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        from opsrl.inventory.problem import ZIPKIN

        for L in GRID_L:
            for p in GRID_P:
                row = data.get(f"p{p}_L{L}")
                if not row:
                    continue
                dp = row["dp"]["objective"]
                cell = lambda k: f"{100 * (row[k]['objective'] - dp) / dp:.2f} %" if k in row else "-"
                tm = row.get("train_metrics", {})
                lines.append(f"| {p} | {L} | {ZIPKIN[(p, L)]:.2f} | {dp:.4f} | "
                             f"{row['hdpo']['objective']:.4f} | {cell('hdpo')} | {cell('base-stock')} | "
                             f"{cell('capped-base-stock')} | {tm.get('wall_s', math.nan):.0f} | "
                             f"{_fmt(tm.get('time_to_1pct_dev_gap_s'))} |" if "hdpo" in row else
                             f"| {p} | {L} | {ZIPKIN[(p, L)]:.2f} | {dp:.4f} | - | - | {cell('base-stock')} | "
                             f"{cell('capped-base-stock')} | - | - |")
        gaps = [100 * (r["hdpo"]["objective"] - r["dp"]["objective"]) / r["dp"]["objective"]
                for r in data.values() if "hdpo" in r]
        if gaps:
            lines.append(f"\nHDPO within 0.25 % of the DP optimum on {sum(g <= 0.25 for g in gaps)} of {len(gaps)} "
                         f"instances (mean gap {sum(gaps) / len(gaps):.3f} %, max {max(gaps):.3f} %).")
    elif part == "serial":
        es = data.get("echelon-stock", {}).get("objective")
        lines += ["| policy | cost | gap to echelon stock |", "|---|---|---|"]
        for k in ("echelon-stock", "base-stock", "hdpo"):
            if k in data:
                lines.append(f"| {k} | {data[k]['objective']:.4f} | {100 * (data[k]['objective'] - es) / es:.2f} % |")
    elif part == "backlog":
        lines += ["| L | closed form | closed-form policy (sim) | HDPO (sim) | gap |", "|---|---|---|---|---|"]
        for key, row in sorted(data.items(), key=lambda kv: int(kv[0].split("L")[1])):
            cf, hd = row["closed-form"]["objective"], row["hdpo"]["objective"]
            lines.append(f"| {key.split('L')[1]} | {row['closed_form_value']:.4f} | {cf:.4f} | {hd:.4f} | "
                         f"{100 * (hd - cf) / cf:.2f} % |")
    elif part == "warehouse":
        lines += ["| stores | train scenarios | MLP | GNN | GNN vs MLP | base-stock |", "|---|---|---|---|---|---|"]
        for key0, row in sorted(data.items(), key=lambda kv: int(kv[0][1:])):  # by store count
            counts = sorted({int(k.split("_")[1]) for k in row if "_" in k and k.split("_")[0] in ("mlp", "gnn")})
            for c in counts:
                m = row.get(f"mlp_{c}", {}).get("hdpo", {}).get("objective")
                g = row.get(f"gnn_{c}", {}).get("hdpo", {}).get("objective")
                bs = row.get("base-stock", {}).get("objective")
                rel = f"{100 * (g - m) / m:+.2f} %" if m and g else "-"
                lines.append(f"| {key0[1:]} | {c} | {_fmt(m, 4)} | {_fmt(g, 4)} | {rel} | {_fmt(bs, 4)} |")
    return "\n".join(lines)


def _fmt(x, nd: int = 0) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("dp", "grid", "backlog", "serial", "warehouse"), required=True)
    ap.add_argument("--quick", action="store_true", help="small test sets and fewer instances")
    ap.add_argument("--train", action="store_true", help="train shipped checkpoints that are missing")
    ap.add_argument("--classical", action="store_true", help="also run base-stock (and capped) searches")
    ap.add_argument("--only", nargs="*", help="grid keys such as p9_L2")
    ap.add_argument("--stores", nargs="*", type=int, help="warehouse: store counts (default 10)")
    ap.add_argument("--scenarios", nargs="*", type=int, help="warehouse: training-set sizes (default 128)")
    ap.add_argument("--policy", default=None)
    ap.add_argument("--rounds", type=int, default=1, help="GNN message-passing rounds")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--train-budget", type=float, default=400.0, help="seconds of training per checkpoint at most")
    ap.add_argument("--budget", type=float, default=780.0, help="seconds before stopping (resume by rerunning)")
    ap.add_argument("--table", action="store_true", help="only print the table of what is stored")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if not args.table:
        deadline = time.time() + args.budget
        {"dp": part_dp, "grid": part_grid, "backlog": part_backlog, "serial": part_serial, "warehouse": part_warehouse}[args.part](
            args, deadline)
    text = table(args.part)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.part}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
