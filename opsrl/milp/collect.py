"""Expert samples for imitation: SCIP explores with pseudo-cost branching and, with a small probability
per node, asks strong branching, records (graph, candidates, scores, choice) and follows its choice.

Samples are ``.npz`` files under ``<root>/samples/<distribution>/<split>/`` (one per sample, plus one
root graph per episode for the hybrid policy); an episode writes a ``.done`` marker, so a collection
resumes where it stopped. Episodes run in parallel worker processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.milp.features import GraphExtractor, candidate_positions, node_features
from opsrl.milp.solvers import TOP_PRIORITY, configure

INF_GAIN = 1e6  # gain credited to a strong-branching child proven infeasible


def strong_branching_itlim(model: Any) -> int:
    """The LP iteration limit per strong-branching child that SCIP's full strong branching uses by default.

    Twice the mean iterations of a node LP, raised early in the tree by (1 + 20 / nodes), within [10, 500]
    (branch_fullstrong.c with ``inititer`` = 0). Unlimited iterations cost several times more per sample.
    """
    lps = max(model.getNLPs(), 1)
    iters = model.getNNodeLPIterations() if model.getNNodes() > 1 else model.getNLPIterations()
    limit = 2.0 * iters / lps * (1.0 + 20.0 / max(model.getNNodes(), 1))
    return int(min(max(limit, 10), 500))


def strong_branching_scores(model: Any, cands: list[Any], itlim: int | None = None) -> np.ndarray:
    """SCIP's product score of every candidate from idempotent full strong branching (-inf on LP error).

    ``itlim`` caps the LP iterations of each child (None: SCIP full strong branching's own default).
    """
    lpobj = model.getLPObjVal()
    scores = np.full(len(cands), -np.inf)
    limit = strong_branching_itlim(model) if itlim is None else itlim
    model.startStrongbranch()
    try:
        for i, var in enumerate(cands):
            down, up, _, _, downinf, upinf, _, _, lperror = model.getVarStrongbranch(var, limit, idempotent=True)
            if lperror:
                continue
            dgain = INF_GAIN if downinf else max(down - lpobj, 0.0)
            ugain = INF_GAIN if upinf else max(up - lpobj, 0.0)
            scores[i] = model.getBranchScoreMultiple(var, [dgain, ugain])
    finally:
        model.endStrongbranch()
    return scores


def expert_rule(out: Path, stem: str, rng: np.random.Generator, query_prob: float, max_samples: int) -> Any:
    """A factory ``model -> Branchrule`` that records strong-branching samples and otherwise defers."""
    from pyscipopt import Branchrule, SCIP_RESULT

    class Expert(Branchrule):
        def __init__(self, model: Any):
            self.model = model
            self.extractor = GraphExtractor(cache=True)
            self.samples = 0
            self.var_row: dict[int, int] | None = None

        def branchexeclp(self, allowaddcons: bool) -> dict[str, Any]:
            m = self.model
            if self.var_row is None:  # root: the graph the hybrid policy embeds once
                graph = self.extractor.extract(m)
                self.var_row = {c.getVar().getIndex(): c.getLPPos() for c in m.getLPColsData()}
                np.savez_compressed(out / f"{stem}_root.npz", **graph.arrays())
                query = True
            else:
                query = rng.random() < query_prob
            if self.samples >= max_samples:
                m.interruptSolve()
                return {"result": SCIP_RESULT.DIDNOTRUN}
            if not query:
                return {"result": SCIP_RESULT.DIDNOTRUN}  # pseudo-cost branching explores
            cands, sols, fracs, _, npriocands, _ = m.getLPBranchCands()
            cands, sols, fracs = cands[:npriocands], sols[:npriocands], fracs[:npriocands]
            if len(cands) < 2:
                return {"result": SCIP_RESULT.DIDNOTRUN}
            graph = self.extractor.extract(m)
            feats = node_features(m, cands, sols, fracs)
            pos = candidate_positions(cands)
            root_rows = np.array([self.var_row.get(v.getIndex(), -1) for v in cands], dtype=np.int64)
            scores = strong_branching_scores(m, cands)
            if not np.isfinite(scores).any():
                return {"result": SCIP_RESULT.DIDNOTRUN}
            best = int(np.argmax(scores))
            np.savez_compressed(out / f"{stem}_{self.samples:03d}.npz", **graph.arrays(), cand_pos=pos,
                                scores=scores, target=np.int64(best), node_feats=feats, root_rows=root_rows)
            self.samples += 1
            m.branchVar(cands[best])
            return {"result": SCIP_RESULT.BRANCHED}

    return Expert


def run_episode(task: tuple[str, str, int, str, str, int, float, int, float]) -> tuple[str, int, float]:
    """Solve one instance (generated here, on first use) while collecting; returns (stem, samples, seconds)."""
    from opsrl.milp.distributions import instance_at, resolve
    from opsrl.milp.problem import read_model

    distribution, split, i, out_dir, stem, seed, query_prob, max_samples, time_limit = task
    path = str(instance_at(resolve(distribution), split, i).model_path())
    out = Path(out_dir)
    t0 = time.perf_counter()
    model = read_model(path)
    configure(model, time_limit, seed, learn2branch=True)
    model.setIntParam("branching/pscost/priority", TOP_PRIORITY // 2)
    rule = expert_rule(out, stem, np.random.default_rng([seed, 7]), query_prob, max_samples)(model)
    model.includeBranchrule(rule, "opsrl-expert", "strong branching sampler", priority=TOP_PRIORITY,
                            maxdepth=-1, maxbounddist=1.0)
    model.optimize()
    n = rule.samples
    model.freeProb()
    (out / f"{stem}.done").write_text(json.dumps({"samples": n, "path": path}))
    return stem, n, time.perf_counter() - t0


def sample_dir(distribution: str, split: str) -> Path:
    from opsrl.milp.distributions import data_root

    return data_root() / "samples" / distribution.replace(":", "-").replace(",", "+").replace("/", "_") / split


def collect(distribution: str, samples: int, split: str = "train", jobs: int = 1, query_prob: float = 0.05,
            per_episode: int = 10, time_limit: float = 120.0, max_instances: int | None = None,
            progress: bool = False) -> dict[str, Any]:
    """Collect until ``samples`` samples of ``split`` exist (resuming past episodes); returns a summary."""
    from opsrl.milp.distributions import resolve

    resolve(distribution)  # an unknown name is a usage error before any work
    out = sample_dir(distribution, split)
    out.mkdir(parents=True, exist_ok=True)
    have = sum(json.loads(p.read_text())["samples"] for p in out.glob("*.done"))
    done = {p.stem for p in out.glob("*.done")}
    n_inst = max_instances if max_instances is not None else 10**9  # instance_at cycles over the split

    def tasks() -> list[tuple]:  # episodes cycle over the instances with a new seed per pass (bounded)
        todo = []
        for ep in range(len(done) + max(samples - have, 0) + jobs):
            stem = f"e{ep:05d}"
            if stem not in done:
                todo.append((distribution, split, ep % n_inst, str(out), stem, ep, query_prob, per_episode,
                             time_limit))
        return todo

    t0 = time.perf_counter()
    episodes = 0
    if have < samples:
        ctx = mp.get_context("fork")
        with ctx.Pool(jobs) as pool:
            for stem, n, secs in pool.imap_unordered(run_episode, tasks()):
                have += n
                episodes += 1
                if progress:
                    print(f"{stem}: {n} samples in {secs:.1f} s (total {have}/{samples})", flush=True)
                if have >= samples:
                    pool.terminate()
                    break
    return {"distribution": distribution, "split": split, "samples": have, "episodes_run": episodes,
            "seconds": time.perf_counter() - t0, "folder": str(out)}
