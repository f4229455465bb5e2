"""Lot sizing beyond the paper: imitate a teacher, then fine-tune with PPO and PDPPO.

For each setting: the teacher's demonstrations on training episodes (``opsrl lotsizing demos``), a behaviour
clone (``opsrl train --algo bc``), then PPO and PDPPO fine-tuned from that clone for several seeds at equal
steps (``--set init=...``), and the rolling-horizon MIP and the best fixed assignment (``static``) themselves.
The teacher is the rolling-horizon MIP (with one DAgger round: the clone decides, the MIP labels, a second
clone on both) or, with ``--teacher static``, the fixed assignment (a constant: no DAgger, a 5-epoch clone).
Every cost comes from ``evaluate`` on the fixed test scenarios; the table compares everything on the
scenarios where the MIP ran.

    python benchmarks/lotsizing_imitation.py --settings 20x10 --seeds 5
    python benchmarks/lotsizing_imitation.py --settings 20x10 25x15 --seeds 3 --teacher static
    python benchmarks/lotsizing_imitation.py --settings 20x10 --seeds 5 --report

Everything is cached under results/lotsizing/imitation/ (a checkpoint that exists is not trained again).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
from pathlib import Path

from lotsizing import OUT, _cached, _costs, run_tag, solver_path, solver_run, welch  # benchmarks/lotsizing.py

from opsrl.core.registry import get_problem
from opsrl.core.run import run_solver
from opsrl.core.train_options import TrainOptions

IM = OUT / "imitation"


def _score(setting: str, solver: str, ckpt: Path) -> dict:
    """Test costs of a checkpoint (cached beside it)."""
    def make() -> dict:
        inst = get_problem("lotsizing").builtin(setting)
        res = run_solver(inst, solver, time_limit=600, seed=0, params={"checkpoint": str(ckpt)}, isolate=False)
        meta = json.loads(ckpt.with_suffix(".json").read_text())
        return {"setting": setting, "solver": solver, "checkpoint": str(ckpt), "objective": res.objective,
                "costs": _costs(inst, res), "metrics": meta.get("metrics", {}),
                "decide_ms_per_period": res.stats.get("decide_ms_per_period")}

    return _cached(ckpt.with_suffix(".score.json"), make)


def _train(ckpt: Path, **options) -> None:
    from opsrl.lotsizing.train import train_from_options

    if not ckpt.is_file():
        train_from_options(TrainOptions(problem="lotsizing", out=ckpt, device="cpu", progress=False, **options))


def _prefix(teacher: str) -> str:
    """What starts the names of a teacher's files: nothing for the MIP (the first runs), ``static_``."""
    return "static_" if teacher == "static" else ""


def _ckpt(kind: str, setting: str, seed: int | None = None, teacher: str = "mip") -> Path:
    """A stage's checkpoint: ``bc``, ``bc2`` (after DAgger), or a fine-tuning ``ppo`` / ``pdppo`` with its seed."""
    name = f"{kind}_{setting}" if seed is None else f"ft_{kind}_{setting}_s{seed}"
    return IM / "ckpt" / f"{_prefix(teacher)}{name}.safetensors"


def _demos(setting: str, teacher: str) -> Path:
    """The teacher's demonstrations of a setting."""
    return IM / f"demos_{_prefix(teacher)}{setting}.npz"


def _dagger(setting: str) -> Path:
    """The MIP's labels on the states its first clone visits (the DAgger round)."""
    return IM / f"dagger1_{setting}.npz"


def pipeline(setting: str, *, episodes: int, dagger_episodes: int, seeds: int, steps: int, step_time: float,
             mip_scenarios: int, warmup: int, switch_weight: float, run: bool = True,
             teacher: str = "mip") -> dict | None:
    """Run (or reuse) every stage for one setting; returns the scored records. With ``run`` off nothing is
    collected or trained: the records come from the cache (None where the clone or the MIP run is missing)."""
    from opsrl.lotsizing.imitate import collect_demonstrations
    from opsrl.lotsizing.policy import load_policy

    inst = get_problem("lotsizing").builtin(setting)
    demos, dagger = _demos(setting, teacher), _dagger(setting)
    bc = _ckpt("bc", setting, teacher=teacher)
    bc2 = bc if teacher == "static" else _ckpt("bc2", setting)
    mip = {"scenarios": mip_scenarios, "step_time": step_time}
    if not run and not (bc2.is_file() and solver_path(setting, "rolling-mip", mip).is_file()):
        return None
    if run:
        sw = str(switch_weight)
        collect_demonstrations(inst, episodes, demos, seed=0, step_time=step_time, progress=True, teacher=teacher)
        # a constant teacher is fitted in a few epochs; more make the actor deterministic (no exploration left)
        _train(bc, seed=0, setting=setting, algo="bc", sets={"demos": str(demos), "switch_weight": sw},
               **({"epochs": 5} if teacher == "static" else {}))
        if teacher == "mip":
            collect_demonstrations(inst, dagger_episodes, dagger, seed=1, step_time=step_time,
                                   policy=load_policy(inst, bc)[0], progress=True)
            _train(bc2, seed=0, setting=setting, algo="bc", sets={"demos": f"{demos},{dagger}", "switch_weight": sw})
    out = {"bc": _score(setting, "bc", bc), "bc2": _score(setting, "bc", bc2), "ppo": [], "pdppo": []}
    for seed in range(seeds):
        for algo in ("ppo", "pdppo"):
            ft = _ckpt(algo, setting, seed, teacher)
            if run:
                _train(ft, seed=seed, setting=setting, algo=algo, steps=steps,
                       sets={"init": str(bc2), "critic_warmup": str(warmup)})
            if ft.is_file():
                out[algo].append(_score(setting, algo, ft))
    out["static"] = solver_run(setting, "static", {}, 600)
    out["rolling"] = solver_run(setting, "rolling-mip", mip, time_limit=mip_scenarios * inst.horizon * (step_time + 0.3))
    return out


def _on(costs: list[float], idx: list[int]) -> float:
    return statistics.mean(costs[i] for i in idx)


def _scratch(setting: str, algo: str, seeds: int) -> list[dict]:
    """The from-scratch runs of the main benchmark at the same steps (200k, 40 epochs), where cached."""
    runs = []
    for seed in range(seeds):
        path = OUT / "runs" / f"{setting}_{algo}_s{seed}_{run_tag(200_000, 40)}.json"
        if path.is_file():
            runs.append(json.loads(path.read_text()))
    return runs


def report(results: dict[str, dict], seeds: int) -> str:
    lines = ["| setting | rolling-mip | static | clone | clone + DAgger | PPO from the clone | PDPPO from the clone | "
             "Welch t (p) | PPO from scratch | PDPPO from scratch |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for setting, r in results.items():
        idx = [i for i, c in enumerate(r["rolling"]["costs"]) if not math.isnan(c)]

        def ms(records: list[dict]) -> tuple[str, list[float]]:
            vals = [_on(x["costs"], idx) for x in records]
            if not vals:
                return "-", vals
            text = f"{vals[0]:.0f}" if len(vals) == 1 else f"{statistics.mean(vals):.0f} ± {statistics.stdev(vals):.0f}"
            return text, vals

        ppo, pv = ms(r["ppo"])
        pdppo, dv = ms(r["pdppo"])
        t, _, p = welch(dv, pv) if len(pv) > 1 and len(dv) > 1 else (math.nan, 0, math.nan)
        sp, _ = ms(_scratch(setting, "ppo", seeds))
        sd, _ = ms(_scratch(setting, "pdppo", seeds))
        dagger = "-" if r["bc2"]["checkpoint"] == r["bc"]["checkpoint"] else f"{_on(r['bc2']['costs'], idx):.0f}"
        lines.append(f"| {setting} ({len(idx)} test scen.) | {_on(r['rolling']['costs'], idx):.0f} | "
                     f"{_on(r['static']['costs'], idx):.0f} | {_on(r['bc']['costs'], idx):.0f} | {dagger} | {ppo} | {pdppo} | "
                     f"{'-' if math.isnan(t) else f'{t:.2f} ({p:.3f})'} | {sp} | {sd} |")
    return "\n".join(lines)


def ship(setting: str, teacher: str, episodes: int, dagger_episodes: int) -> Path:
    """Copy the seed-0 PDPPO fine-tuning to opsrl/weights/lotsizing_<setting> with a sidecar that lists every
    command of its pipeline (the demonstrations, the clone(s), the fine-tuning) and its test cost."""
    ft = _ckpt("pdppo", setting, 0, teacher)
    meta = json.loads(ft.with_suffix(".json").read_text())
    cost = statistics.mean(_score(setting, "pdppo", ft)["costs"])
    steps = [f"opsrl lotsizing demos --setting {setting} --episodes {episodes} --out {_demos(setting, teacher)}"
             + (" --teacher static" if teacher == "static" else "")]
    steps += json.loads(_ckpt("bc", setting, teacher=teacher).with_suffix(".json").read_text())["reproduce"]
    if teacher == "mip":
        steps.append(f"opsrl lotsizing demos --setting {setting} --episodes {dagger_episodes} --seed 1 "
                     f"--dagger {_ckpt('bc', setting)} --out {_dagger(setting)}")
        steps += json.loads(_ckpt("bc2", setting).with_suffix(".json").read_text())["reproduce"]
    whole = " ".join(a for a in sys.argv if a != "--report")
    meta["reproduce"] = [f"python {whole}  # the whole pipeline; the steps:"] + steps + meta["reproduce"]
    meta["note"] = (f"PDPPO fine-tuned for {meta['metrics']['steps']:,} steps from a clone of the "
                    f"{'best fixed machine-to-item assignment (the static solver)' if teacher == 'static' else 'rolling-horizon MIP'}, "
                    f"seed 0; the fine-tuning keeps its start unless it beats it on validation "
                    f"(best at step {meta['metrics']['best_at_steps']:,}). Mean cost on the 100 test scenarios {cost:.1f}.")
    dst = Path("opsrl/weights") / f"lotsizing_{setting}.safetensors"
    shutil.copyfile(ft, dst)
    dst.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=["20x10"])
    ap.add_argument("--episodes", type=int, default=48, help="MIP demonstration episodes")
    ap.add_argument("--dagger-episodes", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=5, help="fine-tuning seeds per algorithm")
    ap.add_argument("--steps", type=int, default=200_000, help="fine-tuning steps")
    ap.add_argument("--warmup", type=int, default=10, help="updates in which only the critics learn")
    ap.add_argument("--step-time", type=float, default=0.2, help="SCIP seconds per MIP")
    ap.add_argument("--mip-scenarios", type=int, default=100, help="test scenarios the rolling-horizon MIP runs on")
    ap.add_argument("--switch-weight", type=float, default=5.0, help="the clones' weight on setup changes")
    ap.add_argument("--teacher", default="mip", choices=["mip", "static"], help="what the clone imitates")
    ap.add_argument("--report", action="store_true", help="only the table, from what is cached")
    ap.add_argument("--ship", action="store_true", help="copy each setting's seed-0 PDPPO fine-tuning to opsrl/weights")
    args = ap.parse_args()
    results = {}
    for s in args.settings:
        found = pipeline(s, episodes=args.episodes, dagger_episodes=args.dagger_episodes, seeds=args.seeds,
                         steps=args.steps, step_time=args.step_time, mip_scenarios=args.mip_scenarios,
                         warmup=args.warmup, switch_weight=args.switch_weight, run=not args.report,
                         teacher=args.teacher)
        if found is not None:
            results[s] = found
            if args.ship:
                print(f"shipped {ship(s, args.teacher, args.episodes, args.dagger_episodes)}")
    table = report(results, args.seeds)
    print(table)
    out = IM / f"{_prefix(args.teacher)}table.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
