"""Stochastic capacitated multi-item multi-machine lot sizing: settings, test scenarios and costs.

A setting holds the plant (production rates, setup costs and losses, holding and lost-sales costs,
inventory caps, the demand model); an instance is a setting plus its fixed test scenarios (initial
inventory, initial setups, demand paths), so every policy is measured on the same demand paths.
``evaluate`` re-simulates the decisions on those scenarios: it is the one place a cost is computed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import InfeasibleInstanceError, InstanceFileError, UsageError
from opsrl.core.files import atomic_write_text
from opsrl.core.registry import Problem, coerce, register_problem
from opsrl.core.types import Evaluation, Reference

# The paper's four configurations (items x machines), each from our generator with a fixed seed.
BUILTIN_SEEDS: dict[str, int] = {"15x5": 1505, "20x10": 2010, "25x10": 2510, "25x15": 2515}
DEFAULT_DEMAND: dict[str, Any] = {"name": "binomial", "n": 20, "p": 0.4}
ACTION_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"  # compact action encoding: idle=0, item i = char i


@dataclass(frozen=True, eq=False)
class Scenarios:
    """Fixed test scenarios: initial inventory (S, n), initial setups (S, m; 1-based items), demand (S, T, n)."""

    inventory: np.ndarray
    setup: np.ndarray
    demand: np.ndarray

    @property
    def count(self) -> int:
        return int(self.demand.shape[0])


@dataclass(frozen=True, eq=False)
class LotSizingSetting:
    """A plant and its demand model; ``scenarios`` are its fixed test scenarios (drawn from ``scenario_seed``).

    Arrays: ``production``, ``setup_costs``, ``setup_loss`` are (machines, items); ``holding_costs``,
    ``lost_sales_costs``, ``max_inventory`` are (items,). A zero production rate means the machine cannot
    make the item. Items are numbered 1..n in actions; 0 is idle.
    """

    production: np.ndarray
    setup_costs: np.ndarray
    setup_loss: np.ndarray
    holding_costs: np.ndarray
    lost_sales_costs: np.ndarray
    max_inventory: np.ndarray
    horizon: int = 100
    demand: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_DEMAND))
    n_scenarios: int = 100
    scenario_seed: int = 0
    name: str = "lotsizing"
    provenance: dict[str, Any] = field(default_factory=dict)
    reference: Reference | None = None
    problem: str = "lotsizing"

    @property
    def n_items(self) -> int:
        return int(self.production.shape[1])

    @property
    def n_machines(self) -> int:
        return int(self.production.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """(machines, items + 1) bool: which choices each machine may take (idle is always allowed)."""
        return np.concatenate([np.ones((self.n_machines, 1), bool), self.production > 0], axis=1)

    @cached_property
    def scenarios(self) -> Scenarios:
        return make_scenarios(self, self.n_scenarios, self.scenario_seed)

    def to_dict(self) -> dict[str, Any]:
        """The setting in the JSON layout (the PDPPO authors' key names where they have one)."""
        return {"name": self.name, "time_horizon": self.horizon, "n_items": self.n_items,
                "n_machines": self.n_machines, "machine_production": self.production.tolist(),
                "setup_costs": self.setup_costs.tolist(), "setup_loss": self.setup_loss.tolist(),
                "holding_costs": self.holding_costs.tolist(), "lost_sales_costs": self.lost_sales_costs.tolist(),
                "max_inventory_level": self.max_inventory.tolist(), "demand_distribution": self.demand,
                "n_scenarios": self.n_scenarios, "scenario_seed": self.scenario_seed,
                "provenance": self.provenance}


# ----------------------------------------------------------------------------- demand models

def sample_demand(model: dict[str, Any], rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Integer demand draws of ``shape`` from a demand model dict (binomial, poisson, uniform)."""
    name = model.get("name")
    if name == "binomial":
        return rng.binomial(int(model["n"]), float(model["p"]), shape).astype(np.int64)
    if name == "poisson":
        return rng.poisson(float(model["lam"]), shape).astype(np.int64)
    if name == "uniform":
        return rng.integers(int(model["low"]), int(model["high"]) + 1, shape).astype(np.int64)
    raise UsageError(f"demand model {name!r}: expected one of binomial (n, p), poisson (lam), uniform (low, high)")


def mean_demand(model: dict[str, Any]) -> float:
    """The expected demand per item and period under a demand model."""
    name = model.get("name")
    if name == "binomial":
        return float(model["n"]) * float(model["p"])
    if name == "poisson":
        return float(model["lam"])
    if name == "uniform":
        return (float(model["low"]) + float(model["high"])) / 2.0
    raise UsageError(f"demand model {name!r}: expected one of binomial, poisson, uniform")


def _check_demand(model: Any, where: str) -> dict[str, Any]:
    needs = {"binomial": ("n", "p"), "poisson": ("lam",), "uniform": ("low", "high")}
    if not isinstance(model, dict) or model.get("name") not in needs:
        raise InstanceFileError(where, f"demand_distribution must be an object with name one of "
                                       f"{', '.join(needs)}, got {model!r}")
    for key in needs[model["name"]]:
        if not isinstance(model.get(key), (int, float)) or model[key] < 0:
            raise InstanceFileError(where, f"demand_distribution {model['name']} needs a non-negative number "
                                           f"{key!r}, got {model.get(key)!r}")
    if model["name"] == "binomial" and model["p"] > 1:
        raise InstanceFileError(where, f"demand_distribution binomial p must be in [0, 1], got {model['p']}")
    return dict(model)


# ----------------------------------------------------------------------------- generation

def _min_biased(rng: np.random.Generator, shape: tuple[int, ...], low: int, high: int, p_low: float) -> np.ndarray:
    """The PDPPO generator's law: ``low`` with probability ``p_low``, else uniform on low+1..high."""
    if high == low:
        return np.full(shape, low, dtype=np.int64)
    other = rng.integers(low + 1, high + 1, shape)
    return np.where(rng.random(shape) < p_low, low, other).astype(np.int64)


def generate_setting(n_items: int, n_machines: int, seed: int, *, horizon: int = 100, n_scenarios: int = 100,
                     name: str | None = None) -> LotSizingSetting:
    """A random setting with the PDPPO authors' parameter laws (see docs/lotsizing.md), fully seeded.

    Rates 0 w.p. 0.4 else 1..40; setup costs 15 w.p. 0.2 else 16..30; setup loss 1 w.p. 0.7 else 2..3;
    holding 0.01; lost sales 0.1 or 1.1 (w.p. 0.5 each); cap 100; demand Binomial(20, 0.4). Every item is
    made producible by at least one machine (a zero column is redrawn).
    """
    rng = np.random.default_rng([int(seed), int(n_items), int(n_machines)])
    production = _min_biased(rng, (n_machines, n_items), 0, 40, 0.4)
    for i in np.flatnonzero(production.sum(axis=0) == 0):  # an item no machine makes: give it one machine
        production[rng.integers(n_machines), i] = rng.integers(1, 41)
    return LotSizingSetting(
        production=production,
        setup_costs=_min_biased(rng, (n_machines, n_items), 15, 30, 0.2).astype(float),
        setup_loss=_min_biased(rng, (n_machines, n_items), 1, 3, 0.7),
        holding_costs=np.full(n_items, 0.01),
        lost_sales_costs=np.where(rng.random(n_items) < 0.5, 0.1, 1.1),
        max_inventory=np.full(n_items, 100, dtype=np.int64),
        horizon=horizon, n_scenarios=n_scenarios, scenario_seed=int(seed) + 1,
        name=name or f"{n_items}x{n_machines}-s{seed}",
        provenance={"generator": "pdppo-laws", "n_items": n_items, "n_machines": n_machines, "seed": seed})


def random_states(setting: LotSizingSetting, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial states as the PDPPO reset draws them: inventory uniform 0..cap-1, a producible setup per machine."""
    inv = np.floor(rng.random((count, setting.n_items)) * setting.max_inventory).astype(np.int64)
    prob = (setting.production > 0).astype(float)
    prob /= np.maximum(prob.sum(axis=1, keepdims=True), 1)
    setup = np.zeros((count, setting.n_machines), dtype=np.int64)
    for m in range(setting.n_machines):
        if prob[m].sum() > 0:
            setup[:, m] = rng.choice(setting.n_items, size=count, p=prob[m]) + 1
    return inv, setup


def make_scenarios(setting: LotSizingSetting, count: int, seed: int) -> Scenarios:
    """``count`` scenarios (initial state and demand path) drawn from ``seed``: the same for every policy."""
    rng = np.random.default_rng([int(seed), 7])
    inv, setup = random_states(setting, rng, count)
    demand = sample_demand(setting.demand, rng, (count, setting.horizon, setting.n_items))
    return Scenarios(inventory=inv, setup=setup, demand=demand)


# ----------------------------------------------------------------------------- simulation and costs

def decode_actions(setting: LotSizingSetting, solution: Any) -> tuple[np.ndarray, np.ndarray] | str:
    """(scenario indices, actions (k, T, m)) from a solution, or a one-line reason it is malformed.

    A solution is ``{"actions": [...], "scenarios": [indices]}`` (scenarios optional: all of them) where each
    action entry is a T x m nested list of choices (0 idle, i item) or a string of T*m characters 0-9a-z.
    """
    if not isinstance(solution, dict) or "actions" not in solution:
        return "a lot-sizing solution is an object with 'actions' (one T x m plan per test scenario)"
    acts = solution["actions"]
    S, T, m = setting.scenarios.count, setting.horizon, setting.n_machines
    idx = solution.get("scenarios")
    idx = list(range(S)) if idx is None else idx
    if not isinstance(acts, list) or not isinstance(idx, list) or len(acts) != len(idx):
        return f"'actions' must be a list with one plan per scenario listed ({len(idx) if isinstance(idx, list) else '?'})"
    if not idx:
        return "the solution holds no scenario"
    try:
        index = np.asarray(idx, dtype=np.int64)
    except (TypeError, ValueError):
        return "'scenarios' must be a list of scenario indices"
    if index.min() < 0 or index.max() >= S or len(set(idx)) != len(idx):
        return f"'scenarios' must be distinct indices in 0..{S - 1}"
    out = np.zeros((len(acts), T, m), dtype=np.int64)
    for k, plan in enumerate(acts):
        if isinstance(plan, str):
            if len(plan) != T * m:
                return f"scenario {idx[k]}: action string has {len(plan)} characters, expected T*m = {T * m}"
            try:
                out[k] = np.array([ACTION_CHARS.index(c) for c in plan]).reshape(T, m)
            except ValueError:
                return f"scenario {idx[k]}: action string holds a character outside 0-9a-z"
        else:
            try:
                arr = np.asarray(plan)
            except (TypeError, ValueError):
                return f"scenario {idx[k]}: actions must be a T x m list of integers"
            if arr.shape != (T, m) or not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr)):
                return f"scenario {idx[k]}: actions must be a {T} x {m} list of integers, got shape {arr.shape}"
            out[k] = arr.astype(np.int64)
    return index, out


def encode_actions(setting: LotSizingSetting, actions: np.ndarray, scenarios: list[int] | None = None) -> dict[str, Any]:
    """The JSON form of actions (k, T, m): one 0-9a-z string per scenario when items fit, else nested lists."""
    actions = np.asarray(actions, dtype=np.int64)
    if setting.n_items < len(ACTION_CHARS):
        plans: list[Any] = ["".join(ACTION_CHARS[a] for a in plan.ravel()) for plan in actions]
    else:
        plans = actions.tolist()
    out: dict[str, Any] = {"actions": plans}
    if scenarios is not None:
        out["scenarios"] = [int(s) for s in scenarios]
    return out


def simulate(setting: LotSizingSetting, actions: np.ndarray, inventory: np.ndarray, setup: np.ndarray,
             demand: np.ndarray) -> dict[str, np.ndarray]:
    """Cost components per scenario of applying ``actions`` (k, T, m) from the given states on ``demand`` (k, T, n)."""
    from opsrl.lotsizing.env import demand_step, post_decision

    inv, stp = inventory.copy(), setup.copy()
    total = {"setup": np.zeros(len(inv)), "lost_sales": np.zeros(len(inv)), "holding": np.zeros(len(inv))}
    for t in range(actions.shape[1]):
        inv, stp, c_setup = post_decision(setting, inv, stp, actions[:, t])
        inv, c_lost, c_hold = demand_step(setting, inv, demand[:, t])
        total["setup"] += c_setup
        total["lost_sales"] += c_lost
        total["holding"] += c_hold
    total["total"] = total["setup"] + total["lost_sales"] + total["holding"]
    return total


def scenario_costs(setting: LotSizingSetting, solution: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(scenario indices, cost components per scenario) of a valid solution; raises ValueError when invalid."""
    decoded = decode_actions(setting, solution)
    if isinstance(decoded, str):
        raise ValueError(decoded)
    index, actions = decoded
    bad = infeasible_actions(setting, actions)
    if bad:
        raise ValueError(bad)
    sc = setting.scenarios
    return index, simulate(setting, actions, sc.inventory[index], sc.setup[index], sc.demand[index])


def infeasible_actions(setting: LotSizingSetting, actions: np.ndarray) -> str:
    """A one-line description of the first action no machine can take (out of range or rate zero), or ''."""
    n = setting.n_items
    if np.any((actions < 0) | (actions > n)):
        k, t, m = np.argwhere((actions < 0) | (actions > n))[0]
        return f"scenario {k} period {t} machine {m}: choice {actions[k, t, m]} outside 0..{n}"
    allowed = setting.mask[np.arange(setting.n_machines)[None, None, :], actions]
    if not allowed.all():
        k, t, m = np.argwhere(~allowed)[0]
        return (f"scenario {k} period {t}: machine {m} cannot produce item {actions[k, t, m]} "
                f"(production rate 0)")
    return ""


# ----------------------------------------------------------------------------- file io

def _array(data: dict[str, Any], key: str, shape: tuple[int, ...], where: str, *, integer: bool = False,
           positive: bool = False) -> np.ndarray:
    if key not in data:
        raise InstanceFileError(where, f"missing field {key!r}")
    try:
        arr = np.asarray(data[key], dtype=float)
    except (TypeError, ValueError):
        raise InstanceFileError(where, f"field {key!r} must be numbers of shape {shape}") from None
    if arr.shape != shape:
        raise InstanceFileError(where, f"field {key!r} has shape {arr.shape}, expected {shape} "
                                       f"(machines x items or items)")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or (positive and np.any(arr <= 0)):
        raise InstanceFileError(where, f"field {key!r} must hold {'positive' if positive else 'non-negative'} "
                                       f"finite numbers")
    if integer:
        if np.any(arr != np.round(arr)):
            raise InstanceFileError(where, f"field {key!r} must hold integers")
        return arr.astype(np.int64)
    return arr


def setting_from_dict(data: Any, where: str = "setting") -> LotSizingSetting:
    """A setting from its JSON object (our layout, or the PDPPO authors' setting files); one-line errors."""
    if not isinstance(data, dict):
        raise InstanceFileError(where, "expected a JSON object describing one lot-sizing setting")
    prod_raw = data.get("machine_production")
    if prod_raw is None:
        raise InstanceFileError(where, "missing field 'machine_production' (machines x items production rates)")
    try:
        prod = np.asarray(prod_raw, dtype=float)
    except (TypeError, ValueError):
        raise InstanceFileError(where, "field 'machine_production' must be a machines x items matrix") from None
    if prod.ndim == 1:
        prod = prod[None, :]
    if prod.ndim != 2 or prod.size == 0:
        raise InstanceFileError(where, "field 'machine_production' must be a machines x items matrix")
    m, n = prod.shape
    for key, want in (("n_items", n), ("n_machines", m)):
        if key in data and data[key] != want:
            raise InstanceFileError(where, f"field {key!r} is {data[key]} but machine_production is {m} x {n}")
    data = {**data, "machine_production": prod.tolist()}
    mat = lambda key, **kw: _array(data, key, (m, n), where, **kw)  # noqa: E731
    production = mat("machine_production", integer=True)
    horizon = data.get("time_horizon", data.get("horizon", 100))
    n_sc = data.get("n_scenarios", 100)
    for key, value in (("time_horizon", horizon), ("n_scenarios", n_sc)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InstanceFileError(where, f"field {key!r} must be a positive integer, got {value!r}")
    seed = data.get("scenario_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InstanceFileError(where, f"field 'scenario_seed' must be an integer, got {seed!r}")
    return LotSizingSetting(
        production=production, setup_costs=mat("setup_costs"), setup_loss=mat("setup_loss", integer=True),
        holding_costs=_array(data, "holding_costs", (n,), where),
        lost_sales_costs=_array(data, "lost_sales_costs", (n,), where),
        max_inventory=_array(data, "max_inventory_level", (n,), where, integer=True, positive=True),
        horizon=int(horizon), demand=_check_demand(data.get("demand_distribution", DEFAULT_DEMAND), where),
        n_scenarios=int(n_sc), scenario_seed=int(seed), name=str(data.get("name", Path(str(where)).stem)),
        provenance=dict(data.get("provenance", {"source": str(where)})))


# ----------------------------------------------------------------------------- the registered problem

class LotSizing(Problem):
    name = "lotsizing"
    family = "lotsizing"
    sense = "min"
    default_solver = "heuristic"
    description = ("stochastic capacitated multi-item multi-machine lot sizing (setups, lost sales): "
                   "mean total cost of a policy over the setting's fixed test scenarios")
    overridable = ("name", "horizon", "n_scenarios", "scenario_seed")

    def generate(self, size: int, seed: int, index: int = 0) -> LotSizingSetting:
        """A setting with ``size`` items and ceil(size / 2.5) machines (the paper's item/machine ratios)."""
        machines = max(1, int(np.ceil(size / 2.5)))
        return generate_setting(size, machines, seed * 1000 + index, name=f"{size}x{machines}-s{seed}-{index}")

    def builtin(self, name: str) -> LotSizingSetting | None:
        if name not in BUILTIN_SEEDS:
            return None
        n, m = (int(x) for x in name.split("x"))
        return generate_setting(n, m, BUILTIN_SEEDS[name], name=name)

    def load(self, path: Path) -> list[LotSizingSetting]:
        path = Path(path)
        if path.suffix.lower() != ".json":
            raise InstanceFileError(path, "expected a .json lot-sizing setting (see docs/lotsizing.md)")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InstanceFileError(path, "file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InstanceFileError(path, f"not valid JSON ({exc})") from None
        items = data if isinstance(data, list) else [data]
        out = [setting_from_dict(d, str(path)) for d in items]
        if len(out) == 1 and not (isinstance(data, dict) and "name" in data):
            out[0] = dataclasses.replace(out[0], name=path.stem)
        return out

    def save(self, instances: list[LotSizingSetting], path: Path) -> None:
        path = Path(path)
        if path.suffix.lower() != ".json":
            raise UsageError(f"{path}: lot-sizing settings are written as .json")
        data: Any = [s.to_dict() for s in instances]
        atomic_write_text(path, json.dumps(data[0] if len(data) == 1 else data, indent=1) + "\n")

    def validate(self, instance: LotSizingSetting) -> None:
        if instance.horizon < 1 or instance.n_scenarios < 1:
            raise InfeasibleInstanceError(f"instance {instance.name}: horizon and n_scenarios must be positive")

    def override(self, instance: LotSizingSetting, key: str, value: str) -> LotSizingSetting:
        if key == "reference":
            return dataclasses.replace(instance, reference=Reference(float(coerce(value, 0.0, f"--set {key}")),
                                                                     "--set reference"))
        if key not in self.overridable:
            raise UsageError(f"--set {key}: problem lotsizing has no field {key!r} to set "
                             f"(fields: reference, {', '.join(self.overridable)})")
        current = getattr(instance, key)
        new = coerce(value, current, f"--set {key}")
        if key != "name" and (not isinstance(new, int) or (key != "scenario_seed" and new < 1)):
            raise UsageError(f"--set {key}={value}: expected a positive integer")
        return dataclasses.replace(instance, **{key: new})

    def evaluate(self, instance: LotSizingSetting, solution: Any) -> Evaluation:
        try:
            _, costs = scenario_costs(instance, solution)
        except ValueError as exc:
            return Evaluation(float("nan"), False, (str(exc),))
        return Evaluation(float(costs["total"].mean()), True, ())


register_problem(LotSizing())
