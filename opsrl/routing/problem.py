"""The routing problems (tsp, cvrp, op, kp): generators, feasibility checks and costs.

``evaluate`` here is the one place a routing solution is costed, in the instance's own units and
distance convention, so that generated instances compare across solvers and file instances
compare with their best-known values.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import InfeasibleInstanceError, UsageError
from opsrl.core.registry import Problem, coerce, register_problem
from opsrl.core.types import Evaluation, Reference
from opsrl.routing import formats
from opsrl.routing.distances import WEIGHT_TYPES
from opsrl.routing.instances import CVRPInstance, KPInstance, OPInstance, TSPInstance

# Community conventions (Kool et al., BQ-NCO): vehicle capacity and OP length budget by size.
CVRP_CAPACITY = {10: 20, 20: 30, 50: 40, 100: 50, 200: 80, 500: 100, 1000: 250}
OP_MAX_LENGTH = {20: 2.0, 50: 3.0, 100: 4.0}
KP_CAPACITY = 20_000  # BQ-NCO's KP100 test set: capacity 20 in units of 1000
KP_MAX_ITEM = 999  # values and weights are integers 1..999

LENGTH_TOL = 1e-9


def table_value(table: dict[int, float], size: int) -> float:
    """The convention for ``size``: its own entry, else the nearest listed size (ties go to the smaller)."""
    if size in table:
        return table[size]
    nearest = min(table, key=lambda k: (abs(k - size), k))
    return table[nearest]


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index)])


def _check_index_list(seq: Any, what: str) -> list[int] | str:
    """A list of ints, or a one-line reason it is not one."""
    if not isinstance(seq, (list, tuple, np.ndarray)):
        return f"{what} must be a list of node indices, got {type(seq).__name__}"
    out = []
    for v in seq:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                out.append(int(v))
                continue
            return f"{what} holds {v!r}, expected integer indices"
        out.append(int(v))
    return out


def _tour_length(dist: np.ndarray, nodes: list[int]) -> float:
    """Length of the closed walk through ``nodes`` (back to the first)."""
    if len(nodes) < 2:
        return 0.0
    idx = np.asarray(nodes)
    return float(dist[idx, np.roll(idx, -1)].sum())


def _duplicates(nodes: list[int]) -> list[int]:
    return sorted(v for v, c in Counter(nodes).items() if c > 1)


def _short(items: list[int], k: int = 8) -> str:
    text = ", ".join(map(str, items[:k]))
    return text + (f", ... ({len(items)} in all)" if len(items) > k else "")


class _RoutingProblem(Problem):
    family = "routing"
    overridable: tuple[str, ...] = ("name",)

    def load(self, path: Path) -> list[Any]:
        return formats.load(self.name, Path(path))

    def save(self, instances: list[Any], path: Path) -> None:
        formats.save(self.name, instances, Path(path))

    def builtin(self, name: str) -> Any | None:
        path = formats.find_builtin(self.name, name)
        return None if path is None else self.load(path)[0]

    def override(self, instance: Any, key: str, value: str) -> Any:
        if key == "reference":
            ref = coerce(value, 0.0, f"--set {key}")
            return dataclasses.replace(instance, reference=Reference(float(ref), "--set reference"))
        if key == "edge_weight_type" and hasattr(instance, "edge_weight_type"):
            if value not in WEIGHT_TYPES or value == "EXPLICIT":
                raise UsageError(f"--set edge_weight_type={value}: expected one of {', '.join(WEIGHT_TYPES[:-1])}")
            return dataclasses.replace(instance, edge_weight_type=value)
        if key not in self.overridable:
            fields = ", ".join(("reference", *self.overridable))
            raise UsageError(f"--set {key}: problem {self.name} has no field {key!r} to set (fields: {fields})")
        current = getattr(instance, key)
        new = coerce(value, float(current) if isinstance(current, (int, float, np.number)) else current,
                     f"--set {key}")
        return dataclasses.replace(instance, **{key: new})

    def plot(self, instance: Any, solution: Any, path: Path, title: str = "") -> None:
        from opsrl.routing.plot import plot_solution

        plot_solution(self.name, instance, solution, Path(path), title)


class TSP(_RoutingProblem):
    name = "tsp"
    native_suffix = ".tsp"
    default_solver = "pyvrp"
    description = "travelling salesman: shortest closed tour through every node"

    def generate(self, size: int, seed: int, index: int = 0) -> TSPInstance:
        coords = _rng(seed, index).random((size, 2))
        return TSPInstance(coords=coords, name=f"tsp{size}-s{seed}-{index}",
                           provenance={"generator": "uniform", "size": size, "seed": seed, "index": index})

    def validate(self, instance: TSPInstance) -> None:
        if instance.num_nodes < 2:
            raise InfeasibleInstanceError(f"instance {instance.name}: a tour needs at least 2 nodes, got {instance.num_nodes}")

    def evaluate(self, instance: TSPInstance, solution: Any) -> Evaluation:
        tour = _check_index_list(solution, "the tour")
        if isinstance(tour, str):
            return Evaluation(float("nan"), False, (tour,))
        n = instance.num_nodes
        bad = [v for v in tour if not 0 <= v < n]
        if bad:
            return Evaluation(float("nan"), False, (f"node indices out of range 0..{n - 1}: {_short(bad)}",))
        violations = []
        if dups := _duplicates(tour):
            violations.append(f"nodes visited more than once: {_short(dups)}")
        if missing := sorted(set(range(n)) - set(tour)):
            violations.append(f"nodes never visited: {_short(missing)}")
        return Evaluation(_tour_length(instance.distances, tour), not violations, tuple(violations))


class CVRP(_RoutingProblem):
    name = "cvrp"
    native_suffix = ".vrp"
    default_compare = "pyvrp"
    description = "capacitated vehicle routing: routes from the depot serving every customer within capacity"
    overridable = ("name", "capacity")

    @property
    def default_solver(self) -> str:  # type: ignore[override]
        """The shipped BQ policy polished by local search when opsrl ships one, PyVRP otherwise."""
        from opsrl.weights import shipped

        return "bq+ls" if shipped("bq_cvrp").is_file() else "pyvrp"

    def generate(self, size: int, seed: int, index: int = 0) -> CVRPInstance:
        rng = _rng(seed, index)
        coords = rng.random((size + 1, 2))
        demands = np.concatenate([[0], rng.integers(1, 10, size)])
        return CVRPInstance(coords=coords, demands=demands, capacity=table_value(CVRP_CAPACITY, size),
                            name=f"cvrp{size}-s{seed}-{index}",
                            provenance={"generator": "uniform", "size": size, "seed": seed, "index": index})

    def validate(self, instance: CVRPInstance) -> None:
        d = instance.demands
        if instance.capacity <= 0:
            raise InfeasibleInstanceError(f"instance {instance.name}: vehicle capacity must be positive, got {instance.capacity:g}")
        if (neg := np.flatnonzero(d[1:] < 0) + 1).size:
            raise InfeasibleInstanceError(f"instance {instance.name}: customer {neg[0]} has negative demand {d[neg[0]]:g}")
        if (over := np.flatnonzero(d[1:] > instance.capacity) + 1).size:
            raise InfeasibleInstanceError(
                f"instance {instance.name}: customer {over[0]} has demand {d[over[0]]:g} above the vehicle "
                f"capacity {instance.capacity:g} ({over.size} such customers); no route can serve it")

    def evaluate(self, instance: CVRPInstance, solution: Any) -> Evaluation:
        if not isinstance(solution, (list, tuple)):
            return Evaluation(float("nan"), False, (f"a CVRP solution is a list of routes, got {type(solution).__name__}",))
        routes = []
        for k, route in enumerate(solution):
            r = _check_index_list(route, f"route {k + 1}")
            if isinstance(r, str):
                return Evaluation(float("nan"), False, (r,))
            routes.append(r)
        n = instance.num_nodes
        violations = []
        flat = [v for r in routes for v in r]
        if bad := [v for v in flat if not 0 <= v < n]:
            return Evaluation(float("nan"), False, (f"node indices out of range 0..{n - 1}: {_short(bad)}",))
        for k, r in enumerate(routes):
            if 0 in r:
                violations.append(f"route {k + 1} passes through the depot (0) inside the route: routes hold customers only, the depot is implicit at both ends")
        if dups := _duplicates([v for v in flat if v != 0]):
            violations.append(f"customers visited more than once: {_short(dups)}")
        if missing := sorted(set(range(1, n)) - set(flat)):
            violations.append(f"customers never visited: {_short(missing)}")
        cost = 0.0
        for k, r in enumerate(routes):
            if not r:
                continue
            load = float(instance.demands[r].sum())
            if load > instance.capacity + 1e-9:
                violations.append(f"route {k + 1} carries {load:g} above the capacity {instance.capacity:g}")
            cost += _tour_length(instance.distances, [0, *r])
        return Evaluation(cost, not violations, tuple(violations))

    def save_solution(self, instance: CVRPInstance, solution: Any, objective: float, path: Path) -> None:
        formats.write_cvrp_solution(Path(path), solution, objective)


class OP(_RoutingProblem):
    name = "op"
    default_solver = "pyvrp"
    sense = "max"
    description = "orienteering: a tour from the depot within a length budget collecting the most prize"
    overridable = ("name", "max_length")

    def generate(self, size: int, seed: int, index: int = 0) -> OPInstance:
        rng = _rng(seed, index)
        coords = rng.random((size + 1, 2))
        d0 = np.linalg.norm(coords - coords[0], axis=1)
        prizes = (1.0 + np.floor(99.0 * d0 / d0[1:].max())) / 100.0
        prizes[0] = 0.0
        return OPInstance(coords=coords, prizes=prizes, max_length=table_value(OP_MAX_LENGTH, size),
                          name=f"op{size}-s{seed}-{index}",
                          provenance={"generator": "uniform, prizes by distance", "size": size, "seed": seed, "index": index})

    def validate(self, instance: OPInstance) -> None:
        if instance.max_length < 0:
            raise InfeasibleInstanceError(f"instance {instance.name}: max_length must be >= 0, got {instance.max_length:g}")

    def evaluate(self, instance: OPInstance, solution: Any) -> Evaluation:
        tour = _check_index_list(solution, "the tour")
        if isinstance(tour, str):
            return Evaluation(float("nan"), False, (tour,))
        n = instance.num_nodes
        if bad := [v for v in tour if not 1 <= v < n]:
            return Evaluation(float("nan"), False, (f"tour nodes must be in 1..{n - 1} (the depot 0 is implicit): {_short(bad)}",))
        violations = []
        if dups := _duplicates(tour):
            violations.append(f"nodes visited more than once: {_short(dups)}")
        length = _tour_length(instance.distances, [0, *tour])
        if length > instance.max_length * (1 + LENGTH_TOL) + LENGTH_TOL:
            violations.append(f"tour length {length:.6g} exceeds the budget max_length {instance.max_length:g}")
        prize = float(instance.prizes[sorted(set(tour))].sum()) if tour else 0.0
        return Evaluation(prize, not violations, tuple(violations))


class KP(_RoutingProblem):
    name = "kp"
    default_solver = "ortools"
    sense = "max"
    description = "0-1 knapsack: the most valuable set of items within the capacity"
    overridable = ("name", "capacity")

    def generate(self, size: int, seed: int, index: int = 0) -> KPInstance:
        rng = _rng(seed, index)
        values = rng.integers(1, KP_MAX_ITEM + 1, size)
        weights = rng.integers(1, KP_MAX_ITEM + 1, size)
        return KPInstance(values=values, weights=weights, capacity=float(KP_CAPACITY), name=f"kp{size}-s{seed}-{index}",
                          provenance={"generator": "uniform integers 1..999", "size": size, "seed": seed, "index": index})

    def validate(self, instance: KPInstance) -> None:
        if instance.capacity < 0:
            raise InfeasibleInstanceError(f"instance {instance.name}: capacity must be >= 0, got {instance.capacity:g}")
        if (neg := np.flatnonzero(instance.weights < 0)).size:
            raise InfeasibleInstanceError(f"instance {instance.name}: item {neg[0]} has negative weight")

    def evaluate(self, instance: KPInstance, solution: Any) -> Evaluation:
        items = _check_index_list(solution, "the item list")
        if isinstance(items, str):
            return Evaluation(float("nan"), False, (items,))
        n = instance.size
        if bad := [v for v in items if not 0 <= v < n]:
            return Evaluation(float("nan"), False, (f"item indices out of range 0..{n - 1}: {_short(bad)}",))
        violations = []
        if dups := _duplicates(items):
            violations.append(f"items packed more than once: {_short(dups)}")
        chosen = sorted(set(items))
        weight = float(instance.weights[chosen].sum()) if chosen else 0.0
        if weight > instance.capacity + 1e-9:
            violations.append(f"packed weight {weight:g} exceeds the capacity {instance.capacity:g}")
        value = float(instance.values[chosen].sum()) if chosen else 0.0
        return Evaluation(value, not violations, tuple(violations))

    def plot(self, instance: Any, solution: Any, path: Path, title: str = "") -> None:
        raise UsageError("--plot: a knapsack solution has no routes to draw")


TSP_PROBLEM = register_problem(TSP())
CVRP_PROBLEM = register_problem(CVRP())
OP_PROBLEM = register_problem(OP())
KP_PROBLEM = register_problem(KP())
