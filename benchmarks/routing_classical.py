"""Classical routing solvers against best-known solutions on real benchmark sets.

TSPLIB EUC_2D instances up to ``--max-tsp`` nodes and CVRPLIB X instances up to ``--max-cvrp``
customers, every solver at the same time limit per instance, gaps to the best-known values
(costs in the files' own nint-rounded distances, from opsrl's ``evaluate``).

    python benchmarks/routing_classical.py --time-limit 10 --jobs 2

writes results/routing_classical_{tsp,cvrp}.parquet (resumable with --resume) and prints the
markdown table quoted in the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import opsrl
from opsrl.bench.runner import run_benchmark
from opsrl.bench.summary import format_table, summarize
from opsrl.core.data import data_dir


def tsplib_instances(root: Path, max_nodes: int) -> list:
    """TSPLIB EUC_2D instances with a best-known value, at most ``max_nodes`` nodes."""
    out = []
    for path in sorted((root / "tsplib").glob("*.tsp")):
        inst = opsrl.load_instance(path, "tsp")
        if inst.edge_weight_type == "EUC_2D" and inst.num_nodes <= max_nodes and inst.reference is not None:
            out.append(inst)
    return out


def cvrplib_instances(root: Path, max_customers: int) -> list:
    """CVRPLIB X instances with at most ``max_customers`` customers (best-known from the .sol files)."""
    out = []
    for path in sorted((root / "cvrplib-x").glob("X-n*.vrp"), key=lambda p: int(p.stem.split("-")[1][1:])):
        if int(path.stem.split("-")[1][1:]) - 1 <= max_customers:
            out.append(opsrl.load_instance(path, "cvrp"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="benchmark data folder (default: $OPSRL_DATA or ../shared/data)")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--max-tsp", type=int, default=200)
    parser.add_argument("--max-cvrp", type=int, default=200)
    parser.add_argument("--tsp-solvers", default="ortools,pyvrp")
    parser.add_argument("--cvrp-solvers", default="ortools,pyvrp")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    if args.data is not None:
        os.environ["OPSRL_DATA"] = str(args.data)
    root = data_dir()
    if root is None:
        print("benchmark data not found: pass --data or set OPSRL_DATA (expected tsplib/ and cvrplib-x/)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    sets = [("tsp", "TSPLIB EUC_2D, n <= %d" % args.max_tsp, tsplib_instances(root, args.max_tsp), args.tsp_solvers),
            ("cvrp", "CVRPLIB X, n <= %d customers" % args.max_cvrp, cvrplib_instances(root, args.max_cvrp), args.cvrp_solvers)]
    print(f"# routing_classical: time limit {args.time_limit:g} s per instance, jobs {args.jobs}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}\n")
    for problem, title, instances, solvers in sets:
        out = args.out / f"routing_classical_{problem}.parquet"
        df = run_benchmark(instances, solvers.split(","), time_limit=args.time_limit, seeds=[0], jobs=args.jobs,
                           out=out, resume=args.resume)
        print(f"## {title}: {len(instances)} instances\n")
        print(format_table(summarize(df)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
