"""Decoding with a BQ policy, batched: greedy, beam search and sampling, plus scoring given solutions.

Every mode runs many same-size instances at once (instances of different sizes are grouped by
size). Greedy takes the most likely action at every step; beam search keeps the ``beam`` best
partial solutions per instance by summed log-probability, batched over instances x beams; sampling
draws ``samples`` solutions per instance. Beam search and sampling end by costing their candidates
with ``evaluate`` and keeping the best, the greedy solution included (it is decoded first anyway,
as the answer when a deadline cuts the search short), so they are never worse than greedy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from opsrl.core.device import amp_dtype, autocast, precision_name
from opsrl.core.registry import get_problem
from opsrl.routing.bq import END, SPECS, Spec, Static, SubProblem, knn_positions, static_from_instances, step, \
    to_actions, to_solution, view
from opsrl.routing.policy import BQPolicy

# chooses the flat action index (B,) from log-probabilities (B, A), the viewed tokens and the step number
Chooser = Callable[[torch.Tensor, SubProblem, int], torch.Tensor]


@dataclass
class Trajectories:
    """Decoded rows: visited node per step (``END`` where none), modes, and summed log-probabilities."""

    visited: np.ndarray  # (R, S)
    modes: np.ndarray  # (R, S)
    logp: np.ndarray  # (R,)

    def solutions(self, problem: str) -> list[Any]:
        return [to_solution(problem, v, m) for v, m in zip(self.visited, self.modes)]


@dataclass
class Decoded:
    """What ``decode_details`` found: the solutions, the greedy ones, and whether a deadline cut it short."""

    solutions: list[Any]
    greedy: list[Any]
    timed_out: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


class _Scorer:
    """One policy evaluation of a sub-problem: its view (knn), mask and log-probabilities."""

    def __init__(self, policy: BQPolicy, spec: Spec, knn: int, amp: Any = None):
        self.policy, self.spec, self.knn, self.amp = policy, spec, knn, amp
        self.device = str(next(policy.parameters()).device)

    def view(self, static: Static, sub: SubProblem) -> tuple[torch.Tensor | None, SubProblem, torch.Tensor]:
        pos = knn_positions(self.spec, static, sub, self.knn)
        v = view(sub, pos)
        return pos, v, self.spec.mask(static, v)

    def logp(self, static: Static, v: SubProblem, mask: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, T * logits) of the actions; rows without any allowed action get a dummy."""
        with autocast(self.device, self.amp):
            logits = self.policy(self.spec.features(static, v)).float()
        flat = mask.flatten(1).clone()
        flat[:, 0] |= ~flat.any(1)  # finished rows: keep the softmax finite; their action is ignored
        return torch.log_softmax(logits.flatten(1).masked_fill(~flat, -math.inf), dim=1)


def _full_position(pos: torch.Tensor | None, token: torch.Tensor) -> torch.Tensor:
    return token if pos is None else pos.gather(1, token[:, None]).squeeze(1)


@torch.inference_mode()
def rollout(policy: BQPolicy, static: Static, choose: Chooser, knn: int = 0, lengths: torch.Tensor | None = None,
            deadline: float | None = None, amp: Any = None) -> Trajectories | None:
    """Decode every row of ``static`` once, the action at each step picked by ``choose``.

    ``lengths`` (B,) stops row b after that many steps (scoring given solutions); None is returned
    when ``deadline`` (a ``time.perf_counter`` value) passes first. ``amp`` is the autocast dtype
    (None: fp32).
    """
    spec = SPECS[static.problem]
    scorer = _Scorer(policy, spec, knn, amp)
    sub = spec.initial(static)
    done = torch.zeros(static.batch, dtype=torch.bool, device=static.device)
    logp_sum = torch.zeros(static.batch, dtype=torch.float64, device=static.device)
    visited, modes = [], []
    t = 0
    while True:
        if deadline is not None and time.perf_counter() > deadline:
            return None
        pos, v, mask = scorer.view(static, sub)
        done |= ~mask.flatten(1).any(1)
        if lengths is not None:
            done |= lengths <= t
        if bool(done.all()):
            break
        logp = scorer.logp(static, v, mask)
        action = choose(logp, v, t)
        active = ~done
        logp_sum += torch.where(active, logp.gather(1, action[:, None]).squeeze(1).double(), 0.0)
        mode = action % spec.logits
        sub, node, ends = step(spec, static, sub, _full_position(pos, action // spec.logits), mode, active)
        visited.append(node)
        modes.append(mode)
        done |= ends
        t += 1
    return _trajectories(visited, modes, logp_sum, static.batch)


def _trajectories(visited: list[torch.Tensor], modes: list[torch.Tensor], logp: torch.Tensor,
                  rows: int) -> Trajectories:
    if not visited:
        empty = np.full((rows, 0), END, dtype=np.int64)
        return Trajectories(empty, empty.copy(), logp.cpu().numpy())
    return Trajectories(torch.stack(visited, 1).cpu().numpy(), torch.stack(modes, 1).cpu().numpy(),
                        logp.cpu().numpy())


def greedy_choice(logp: torch.Tensor, v: SubProblem, t: int) -> torch.Tensor:
    return logp.argmax(dim=1)


def sampling_choice(generator: torch.Generator) -> Chooser:
    """Draw each action from the policy's distribution (with ``generator``, for reproducibility)."""

    def choose(logp: torch.Tensor, v: SubProblem, t: int) -> torch.Tensor:
        return torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)

    return choose


def forced_choice(problem: str, nodes: torch.Tensor, modes: torch.Tensor) -> Chooser:
    """Follow given actions: step t takes node ``nodes[:, t]`` by ``modes[:, t]`` (teacher forcing)."""
    spec = SPECS[problem]

    def choose(logp: torch.Tensor, v: SubProblem, t: int) -> torch.Tensor:
        if t >= nodes.shape[1]:
            return torch.zeros(len(logp), dtype=torch.long, device=logp.device)
        tokens = v.nodes.clone()
        if spec.has_ends:
            tokens[:, 0] = -2  # the origin is never the target (the destination may be: op's end)
        token = (tokens == nodes[:, t:t + 1]).long().argmax(1)
        return token * spec.logits + modes[:, t]

    return choose


@torch.inference_mode()
def beam_search(policy: BQPolicy, static: Static, width: int, knn: int = 0,
                deadline: float | None = None, amp: Any = None) -> Trajectories | None:
    """The ``width`` best partial solutions per row by summed log-probability; rows b*width + j of the result.

    None when ``deadline`` (a ``time.perf_counter`` value) passes before the search ends.
    """
    spec = SPECS[static.problem]
    scorer = _Scorer(policy, spec, knn, amp)
    b, k, dev = static.batch, width, static.device
    static = static.repeat(k)
    sub = spec.initial(static)
    score = torch.full((b, k), -math.inf, dtype=torch.float64, device=dev)
    score[:, 0] = 0.0
    done = torch.zeros(b * k, dtype=torch.bool, device=dev)
    visited = torch.empty((b * k, 0), dtype=torch.long, device=dev)
    modes = torch.empty_like(visited)
    while True:
        if deadline is not None and time.perf_counter() > deadline:
            return None
        pos, v, mask = scorer.view(static, sub)
        done |= ~mask.flatten(1).any(1) | ~torch.isfinite(score.flatten())
        if bool(done.all()):
            break
        logp = scorer.logp(static, v, mask).double()
        flat_score = score.flatten()
        cand = torch.where(done[:, None], -math.inf, flat_score[:, None] + logp)
        cand[:, 0] = torch.where(done, flat_score, cand[:, 0])  # a finished beam continues as it is
        actions = cand.shape[1]
        top = cand.view(b, k * actions).topk(k, dim=1)
        parent = (torch.arange(b, device=dev)[:, None] * k + top.indices // actions).flatten()
        action = (top.indices % actions).flatten()
        score = top.values
        sub, done, visited, modes = sub.take(parent), done[parent], visited[parent], modes[parent]
        pos = None if pos is None else pos[parent]
        active = ~done & torch.isfinite(score.flatten())
        mode = action % spec.logits
        sub, node, ends = step(spec, static, sub, _full_position(pos, action // spec.logits), mode, active)
        visited = torch.cat([visited, node[:, None]], 1)
        modes = torch.cat([modes, mode[:, None]], 1)
        done |= ends
    return Trajectories(visited.cpu().numpy(), modes.cpu().numpy(), score.flatten().cpu().numpy())


def _best(problem: str, instances: list[Any], candidates: list[list[Any]]) -> list[Any]:
    """Per instance, its feasible candidate with the best ``evaluate`` objective (the first on ties)."""
    prob = get_problem(problem)
    sign = 1.0 if prob.sense == "min" else -1.0
    out = []
    for inst, cands in zip(instances, candidates):
        scored = [(sign * ev.objective, j) for j, c in enumerate(cands)
                  if (ev := prob.evaluate(inst, c)).feasible]
        out.append(cands[min(scored)[1]] if scored else cands[0])
    return out


def _policy_on(policy: BQPolicy, device: str) -> BQPolicy:
    """The policy in eval mode on ``device`` (moved in place when it is elsewhere)."""
    if next(policy.parameters()).device != torch.device(device):
        policy = policy.to(device)
    return policy.eval()


def decode_details(policy: BQPolicy, instances: list[Any], *, beam: int = 1, samples: int = 0, knn: int | None = None,
                   device: str = "cpu", seed: int = 0, batch: int = 256,
                   deadline: float | None = None, precision: str = "auto") -> Decoded:
    """``decode`` with what it did: the greedy solutions too, and whether ``deadline`` stopped beam or sampling."""
    problem = policy.config.problem
    knn = policy.decoding_knn(knn)
    policy = _policy_on(policy, device)
    amp = amp_dtype(device, precision)
    width = beam if beam > 1 else max(samples, 1)
    per_chunk = max(1, batch // width)
    greedy: list[Any] = [None] * len(instances)
    final: list[Any] = [None] * len(instances)
    timed_out = False
    generator = torch.Generator(device=device).manual_seed(int(seed))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for idx in _groups_by_size(instances, batch):
            static = static_from_instances(problem, [instances[i] for i in idx], device)
            for i, sol in zip(idx, rollout(policy, static, greedy_choice, knn, amp=amp).solutions(problem)):
                greedy[i] = final[i] = sol
        for idx in _groups_by_size(instances, per_chunk):
            if width == 1 or timed_out:
                break
            insts = [instances[i] for i in idx]
            static = static_from_instances(problem, insts, device)
            if beam > 1:
                found = beam_search(policy, static, beam, knn, deadline, amp)
            else:
                found = rollout(policy, static.repeat(samples), sampling_choice(generator), knn, deadline=deadline,
                                amp=amp)
            if found is None:
                timed_out = True
                break
            sols = found.solutions(problem)
            cands = [[greedy[i], *sols[j * width:(j + 1) * width]] for j, i in enumerate(idx)]
            for i, sol in zip(idx, _best(problem, insts, cands)):
                final[i] = sol
    stats = {"device": str(device), "precision": precision_name(amp), "decode_s": time.perf_counter() - t0,
             "mode": f"beam {beam}" if beam > 1 else f"samples {samples}" if samples > 0 else "greedy", "knn": knn}
    return Decoded(final, greedy, timed_out, stats)


def decode(policy: BQPolicy, instances: list[Any], *, beam: int = 1, samples: int = 0, knn: int | None = None,
           device: str = "cpu", seed: int = 0, batch: int = 256, precision: str = "auto") -> list[Any]:
    """Solutions of ``instances`` (opsrl's format, feasible): greedy, or the best of beam search / samples.

    ``beam`` > 1 runs beam search of that width, else ``samples`` > 0 draws that many solutions
    per instance (seeded by ``seed``); both keep the best by ``evaluate``, greedy included. ``knn``
    > 0 restricts each step to the origin, the destination and the ``knn`` nodes nearest the origin
    (None: the policy's own ``knn``, which ``load_policy`` reads from the checkpoint; 0: every node).
    ``batch`` bounds the rows (instances x beams or samples) decoded at once. The policy is moved to
    ``device`` (in place) when it is elsewhere. ``precision`` (auto|fp32|bf16): auto computes in
    bf16 where the hardware has it (CUDA, CPUs with AVX512-BF16 or AMX), fp32 elsewhere.
    """
    return decode_details(policy, instances, beam=beam, samples=samples, knn=knn, device=device, seed=seed,
                          batch=batch, precision=precision).solutions


def log_likelihood(policy: BQPolicy, instances: list[Any], solutions: list[Any], *, knn: int | None = None,
                   device: str = "cpu", precision: str = "auto") -> np.ndarray:
    """The policy's log-probability of producing each of ``solutions`` (same-size instances); -inf for a
    solution ``evaluate`` rejects or the masks forbid."""
    problem = policy.config.problem
    prob = get_problem(problem)
    feasible = np.array([prob.evaluate(i, s).feasible for i, s in zip(instances, solutions)])
    knn = policy.decoding_knn(knn)
    policy = _policy_on(policy, device)
    actions = [to_actions(problem, s) if ok else ([], []) for s, ok in zip(solutions, feasible)]
    steps = max((len(n) for n, _ in actions), default=0)
    nodes = torch.full((len(actions), steps), -3, dtype=torch.long)
    modes = torch.zeros_like(nodes)
    for r, (n, m) in enumerate(actions):
        nodes[r, :len(n)] = torch.tensor(n, dtype=torch.long)
        modes[r, :len(m)] = torch.tensor(m, dtype=torch.long)
    with torch.inference_mode():
        static = static_from_instances(problem, instances, device)
        choose = forced_choice(problem, nodes.to(device), modes.to(device))
        lengths = torch.tensor([len(n) for n, _ in actions], device=device)
        logp = rollout(policy, static, choose, knn, lengths=lengths, amp=amp_dtype(device, precision)).logp
    return np.where(feasible, logp, -np.inf)


def _groups_by_size(instances: list[Any], chunk: int) -> list[list[int]]:
    """Indices of ``instances`` grouped by size, in chunks of at most ``chunk``."""
    by_size: dict[int, list[int]] = {}
    for i, inst in enumerate(instances):
        by_size.setdefault(inst.size, []).append(i)
    return [idx[s:s + chunk] for idx in by_size.values() for s in range(0, len(idx), chunk)]
