"""Lot sizing: PDPPO vs PPO (several training seeds, Welch t-test), the days-of-supply heuristic, and the MIP
baselines (perfect-information bound, rolling horizon on expected demand) on the four built-in settings.

    flock /tmp/opsrl-heavy.lock python benchmarks/lotsizing.py --settings 15x5 --seeds 5 --steps 40000
    python benchmarks/lotsizing.py --report        # the tables from what has been run

Each training run, policy evaluation and MIP run is cached under results/lotsizing/ (resumable: run the
settings in separate chunks). Every cost comes from the problem's ``evaluate`` re-simulation on the same
fixed test scenarios. ``--quick`` is a smoke test (one seed, few steps, one MIP scenario, short limits).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from opsrl.core.registry import get_problem
from opsrl.core.run import run_solver
from opsrl.core.train_options import TrainOptions
from opsrl.lotsizing.problem import BUILTIN_SEEDS, scenario_costs

OUT = Path("results/lotsizing")


# ----------------------------------------------------------------------------- statistics

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Numerical Recipes, Lentz)."""
    tiny, qab, qap, qam = 1e-30, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def betai(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1 - x) / b


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's t statistic, its degrees of freedom and the two-sided p-value (mean(a) vs mean(b))."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return float("nan"), float("nan"), float("nan")
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p = betai(df / 2, 0.5, df / (df + t * t))
    return t, df, p


# ----------------------------------------------------------------------------- runs (cached)

def _cached(path: Path, make) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)
    return data


def _costs(inst, result) -> list[float]:
    idx, costs = scenario_costs(inst, result.solution)
    out = [float("nan")] * inst.scenarios.count
    for k, s in enumerate(idx):
        out[s] = float(costs["total"][k])
    return out


# the algorithms a run can name: "pdppo-setup" is PDPPO with its post-decision critic on the setup-cost return
ALGO_SETS = {"pdppo": ("pdppo", {}), "ppo": ("ppo", {}), "pdppo-setup": ("pdppo", {"post_return": "setup"})}


# training recipes: ours (the trainer's defaults), or the authors' code's (leokan92/pdppo): 400 steps (4
# episodes) per update, returns standardised per update and advantages not, PDPPO's min(V, V_x) fitted to G,
# entropy 0.012 on the machines' mean, a clipped ratio per machine, Adam weight decay 0.001
class Recipe(NamedTuple):
    batch: int | None  # episodes per update (None: the trainer's)
    sets: dict[str, str]  # --set options for every algorithm
    per_algo: dict[str, dict[str, str]]  # and for one algorithm only


RECIPES = {"ours": Recipe(None, {}, {}),
           "authors": Recipe(4, {"returns": "standardise", "adv_norm": "false", "entropy": "0.012",
                                 "entropy_reduce": "mean", "ratio": "machine", "weight_decay": "0.001"},
                             {"pdppo": {"post_critic": "min"}})}
BARE_EPOCHS = 10  # runs with this many epochs per update are named by their step count alone (the first ones)
NEAR_BEST = 0.2  # "steps to within 20 % of the best validation cost" of any run of a setting


def run_tag(steps: int, epochs: int, recipe: str = "ours") -> str:
    """How runs of a budget are named: the step count, plus ``e<epochs>`` unless 10 epochs per update, plus
    ``-<recipe>`` unless ours."""
    tag = f"{steps}" if epochs == BARE_EPOCHS else f"{steps}e{epochs}"
    return tag if recipe == "ours" else f"{tag}-{recipe}"


def train_run(setting: str, algo: str, seed: int, steps: int, epochs: int, recipe: str = "ours") -> dict:
    from opsrl.lotsizing.train import train_from_options

    tag = run_tag(steps, epochs, recipe)
    ckpt = OUT / "ckpt" / f"{setting}_{algo}_s{seed}_{tag}.safetensors"
    base, sets = ALGO_SETS[algo]
    rec = RECIPES[recipe]

    def make() -> dict:
        opts = TrainOptions(problem="lotsizing", out=ckpt, device="cpu", seed=seed, progress=False, setting=setting,
                            algo=base, steps=steps, epochs=epochs, batch=rec.batch,
                            sets={**rec.sets, **rec.per_algo.get(base, {}), **sets})
        metrics = train_from_options(opts)
        inst = get_problem("lotsizing").builtin(setting)
        res = run_solver(inst, base, time_limit=600, seed=seed, params={"checkpoint": str(ckpt)}, isolate=False)
        return {"setting": setting, "algo": algo, "seed": seed, "steps": steps, "metrics": metrics,
                "objective": res.objective, "costs": _costs(inst, res),
                "decide_ms_per_period": res.stats.get("decide_ms_per_period")}

    return _cached(OUT / "runs" / f"{setting}_{algo}_s{seed}_{tag}.json", make)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, the worker gets SIGTERM when the benchmark process dies (a killed
    benchmark left its workers training and writing stale results)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _train_all(runs: list[tuple], jobs: int):
    """Yield each training run's record (cached ones at once); ``jobs`` > 1 trains in worker processes."""
    if jobs <= 1:
        for run in runs:
            yield train_run(*run)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_die_with_parent) as pool:
        yield from pool.map(train_run, *zip(*runs)) if runs else ()


def solver_path(setting: str, solver: str, params: dict) -> Path:
    """Where a solver run of a setting is cached."""
    tag = "_".join(f"{k}{v}" for k, v in sorted(params.items()))
    return OUT / "solvers" / f"{setting}_{solver}_{tag}.json"


def solver_run(setting: str, solver: str, params: dict, time_limit: float) -> dict:

    def make() -> dict:
        inst = get_problem("lotsizing").builtin(setting)
        res = run_solver(inst, solver, time_limit=time_limit, seed=0, params=params, isolate=False)
        stats = {k: v for k, v in res.stats.items() if k not in ("traceback",)}
        return {"setting": setting, "solver": solver, "params": params, "status": str(res.status),
                "objective": res.objective, "costs": _costs(inst, res), "stats": stats, "wall_s": res.wall_s,
                "message": res.message}

    return _cached(solver_path(setting, solver, params), make)


# ----------------------------------------------------------------------------- report

def _mean_sd(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if len(vals) < 2:
        return f"{vals[0]:.0f}" if vals else "-"
    return f"{statistics.mean(vals):.0f} ± {statistics.stdev(vals):.0f}"


def _runs(setting: str, algo: str, tag: str, seeds: int) -> list[dict]:
    """The cached training runs of one setting, algorithm and budget (``run_tag``), seeds 0 .. ``seeds`` - 1."""
    paths = [OUT / "runs" / f"{setting}_{algo}_s{seed}_{tag}.json" for seed in range(seeds)]
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def report(settings: list[str], seeds: int, steps: int, k: int, epochs: int, recipe: str = "ours") -> str:
    tag = run_tag(steps, epochs, recipe)
    lines = [f"Policies on the 100 test scenarios (mean ± sd over training seeds of the mean cost; "
             f"{seeds} seeds x {steps:,} steps each, {epochs} epochs per update, {recipe} recipe)", "",
             "| setting | PDPPO | PPO | Welch t (p) | PDPPO ≤ PPO | heuristic | steps to heuristic's val cost PDPPO / PPO "
             f"| steps to within {NEAR_BEST * 100:.0f} % of the best val cost PDPPO / PPO |",
             "|---|---|---|---|---|---|---|---|"]
    sub = [f"On the first {k} test scenarios (where the MIPs ran): mean cost and gap to the pi-mip lower bound", "",
           "| setting | pi-mip bound | pi-mip plan | rolling-mip | PDPPO (seed mean) | PPO (seed mean) | heuristic | "
           "gap PDPPO | gap rolling-mip |", "|---|---|---|---|---|---|---|---|---|"]
    for setting in settings:
        data = {a: _runs(setting, a, tag, seeds) for a in ("pdppo", "ppo")}
        if not data["pdppo"] or not data["ppo"]:
            continue
        heur_path = OUT / "solvers" / f"{setting}_heuristic_.json"
        heur = json.loads(heur_path.read_text()) if heur_path.is_file() else None
        pd = [r["objective"] for r in data["pdppo"]]
        pp = [r["objective"] for r in data["ppo"]]
        t, df, p = welch(pd, pp) if len(pd) > 1 and len(pp) > 1 else (float("nan"),) * 3
        thr = _heuristic_val(setting)
        reach = {a: _steps_to(data[a], thr) for a in data}
        near = (1 + NEAR_BEST) * min(r["metrics"]["best_val_cost"] for a in data for r in data[a])
        close = {a: _steps_to(data[a], near) for a in data}
        lines.append(f"| {setting} | {_mean_sd(pd)} | {_mean_sd(pp)} | {t:.2f} ({p:.3f}) | "
                     f"{'yes' if statistics.mean(pd) <= statistics.mean(pp) else 'no'} | "
                     f"{heur['objective']:.0f} | {reach['pdppo']} / {reach['ppo']} | "
                     f"{close['pdppo']} / {close['ppo']} (val {near:.0f}) |" if heur else
                     f"| {setting} | {_mean_sd(pd)} | {_mean_sd(pp)} | {t:.2f} ({p:.3f}) | - | - | - | - |")
        pim = sorted((OUT / "solvers").glob(f"{setting}_pi-mip_*.json"))
        rol = sorted((OUT / "solvers").glob(f"{setting}_rolling-mip_*.json"))
        if pim and rol and heur:
            pi, ro = json.loads(pim[-1].read_text()), json.loads(rol[-1].read_text())
            idx = [s for s in range(len(pi["costs"])) if not math.isnan(pi["costs"][s]) and not math.isnan(ro["costs"][s])][:k]
            bound = statistics.mean(pi["stats"]["scenario_bounds"][: len(idx)])
            f = lambda c: statistics.mean(c[s] for s in idx)  # noqa: E731
            pdk = statistics.mean(f(r["costs"]) for r in data["pdppo"])
            ppk = statistics.mean(f(r["costs"]) for r in data["ppo"])
            gap = lambda v: f"{100 * (v - bound) / v:.1f} %" if bound > 0 else "n/a (bound 0)"  # noqa: E731
            sub.append(f"| {setting} | {bound:.0f} | {f(pi['costs']):.0f} | {f(ro['costs']):.0f} | {pdk:.0f} | "
                       f"{ppk:.0f} | {f(heur['costs']):.0f} | {gap(pdk)} | {gap(f(ro['costs']))} |")
    variant = ["PDPPO with the setup-cost post-decision return (`--set post_return=setup`) against PPO, same runs", "",
               "| setting | PDPPO (setup return) | PPO | Welch t (p) | PDPPO (setup) ≤ PPO |", "|---|---|---|---|---|"]
    for setting in settings:
        got = {a: _runs(setting, a, tag, seeds) for a in ("pdppo-setup", "ppo")}
        if len(got["pdppo-setup"]) > 1 and len(got["ppo"]) > 1:
            a, b = [r["objective"] for r in got["pdppo-setup"]], [r["objective"] for r in got["ppo"]]
            t, _, p = welch(a, b)
            variant.append(f"| {setting} | {_mean_sd(a)} | {_mean_sd(b)} | {t:.2f} ({p:.3f}) | "
                           f"{'yes' if statistics.mean(a) <= statistics.mean(b) else 'no'} |")
    return "\n".join(lines + [""] + sub + ([""] + variant if len(variant) > 4 else []))


def _heuristic_val(setting: str) -> float:
    """The heuristic's mean cost on the training validation scenarios: the threshold for steps-to-reach."""
    from opsrl.lotsizing.env import run_policy
    from opsrl.lotsizing.problem import simulate
    from opsrl.lotsizing.solvers import DaysOfSupply
    from opsrl.lotsizing.train import PPOConfig, validation_scenarios

    inst = get_problem("lotsizing").builtin(setting)
    val = validation_scenarios(inst, PPOConfig().val_scenarios)
    acts = run_policy(DaysOfSupply(), inst, val.inventory, val.setup, val.demand)
    return float(simulate(inst, acts, val.inventory, val.setup, val.demand)["total"].mean())


def _steps_to(runs: list[dict], threshold: float) -> str:
    import csv

    reached = []
    for r in runs:
        curve = Path(r["metrics"]["learning_curve"])
        if not curve.is_file():
            return "-"
        with curve.open() as f:
            rows = [row for row in csv.DictReader(f) if row["val_cost"] not in ("", "nan")]
        hit = [int(row["steps"]) for row in rows if float(row["val_cost"]) <= threshold]
        reached.append(hit[0] if hit else None)
    got = [s for s in reached if s is not None]
    if not got:
        return f"none of {len(runs)}"
    return f"{statistics.mean(got) / 1000:.0f}k ({len(got)}/{len(runs)})"


def plot_curves(settings: list[str], tag: str, path: Path) -> None:
    import csv

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 3.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for algo, color in (("pdppo", "tab:blue"), ("ppo", "tab:orange")):
            curves = []
            for p in sorted((OUT / "ckpt").glob(f"{setting}_{algo}_s*_{tag}.curve.csv")):
                with p.open() as f:
                    rows = [r for r in csv.DictReader(f) if r["val_cost"] not in ("", "nan")]
                curves.append(([int(r["steps"]) for r in rows], [float(r["val_cost"]) for r in rows]))
            if not curves:
                continue
            n = min(len(c[0]) for c in curves)
            x = np.array(curves[0][0][:n])
            y = np.array([c[1][:n] for c in curves])
            ax.plot(x, y.mean(0), color=color, label=f"{algo} ({len(curves)} seeds)")
            ax.fill_between(x, y.min(0), y.max(0), color=color, alpha=0.2)
        ax.axhline(_heuristic_val(setting), color="gray", ls="--", label="heuristic")
        ax.set_title(setting)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("validation cost (greedy)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=list(BUILTIN_SEEDS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40_000)
    ap.add_argument("--epochs", type=int, default=None, help="gradient epochs per update (default: the trainer's)")
    ap.add_argument("--mip-scenarios", type=int, default=3, help="test scenarios the MIP baselines run on")
    ap.add_argument("--pi-time", type=float, default=20.0, help="pi-mip seconds per scenario")
    ap.add_argument("--rolling-horizon", type=int, default=5)
    ap.add_argument("--rolling-step-time", type=float, default=0.1, help="rolling-mip seconds per MIP")
    ap.add_argument("--skip-mip", action="store_true", help="train and evaluate the policies only")
    ap.add_argument("--skip-train", action="store_true", help="run the MIP baselines only")
    ap.add_argument("--report", action="store_true", help="only print the tables from cached runs")
    ap.add_argument("--ship", action="store_true", help="copy each setting's seed-0 PDPPO checkpoint to opsrl/weights")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 3200 steps, 1 MIP scenario")
    ap.add_argument("--jobs", type=int, default=1, help="training runs in parallel (one torch thread each)")
    ap.add_argument("--algos", nargs="+", default=["pdppo", "ppo"], choices=sorted(ALGO_SETS),
                    help="what to train (pdppo-setup: PDPPO with --set post_return=setup)")
    ap.add_argument("--recipe", default="ours", choices=sorted(RECIPES),
                    help="training details: ours, or the authors' code's (4 episodes per update and four more)")
    args = ap.parse_args()
    if args.epochs is None:
        from opsrl.lotsizing.train import PPOConfig

        args.epochs = PPOConfig().epochs
    if args.quick:
        args.seeds, args.steps, args.mip_scenarios, args.pi_time, args.rolling_step_time = 1, 3200, 1, 5.0, 0.05
    if not args.report:
        for setting in args.settings:
            t0 = time.perf_counter()
            solver_run(setting, "heuristic", {}, 600)
            runs = [(setting, algo, seed, args.steps, args.epochs, args.recipe) for seed in range(0 if args.skip_train else args.seeds)
                    for algo in args.algos]
            for r in _train_all(runs, args.jobs):
                print(f"{setting} {r['algo']} seed {r['seed']}: test cost {r['objective']:.0f} "
                      f"(train {r['metrics']['wall_s']:.0f} s)", flush=True)
            if not args.skip_mip:
                k = args.mip_scenarios
                solver_run(setting, "pi-mip", {"scenarios": k, "scenario_time": args.pi_time}, k * args.pi_time * 3 + 60)
                solver_run(setting, "rolling-mip", {"scenarios": k, "horizon": args.rolling_horizon,
                                                    "step_time": args.rolling_step_time},
                           k * get_problem("lotsizing").builtin(setting).horizon * (args.rolling_step_time * 5 + 1))
            print(f"{setting} done in {time.perf_counter() - t0:.0f} s", flush=True)
            if args.ship and not args.skip_train:
                src = OUT / "ckpt" / f"{setting}_pdppo_s0_{run_tag(args.steps, args.epochs, args.recipe)}.safetensors"
                dst = Path("opsrl/weights") / f"lotsizing_{setting}.safetensors"
                shutil.copyfile(src, dst)
                shutil.copyfile(src.with_suffix(".json"), dst.with_suffix(".json"))
    tag = run_tag(args.steps, args.epochs, args.recipe)
    table = report(args.settings, args.seeds, args.steps, args.mip_scenarios, args.epochs, args.recipe)
    print(table)
    (OUT / f"table_{tag}.md").write_text(table + "\n")
    try:
        plot_curves(args.settings, tag, OUT / f"curves_{tag}.png")
    except Exception as exc:  # the table stands without the plot
        print(f"(no learning-curve plot: {exc})")


if __name__ == "__main__":
    main()
