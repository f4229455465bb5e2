"""Inventory networks: settings (locations, edges, costs, demand), scenario sets and the one cost.

An instance is a setting plus its fixed train / dev / test demand scenarios. Solving means running a
policy over the test scenarios; ``evaluate`` re-simulates the recorded orders on those scenarios with
the torch simulator (imported lazily) and returns the mean cost per period per store after warm-up.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import InstanceFileError, OpsrlError, UsageError
from opsrl.core.registry import Problem, coerce, register_problem
from opsrl.core.types import Evaluation, Reference

ROLES = ("store", "warehouse", "transship", "echelon")
DEMANDS = ("poisson", "normal", "mvnormal", "history")
SPLITS = ("train", "dev", "test")

# Zipkin (2008) optimal average costs, one store, lost sales, Poisson(5), h = 1: (p, L) -> cost.
ZIPKIN = {(4, 1): 4.04, (4, 2): 4.40, (4, 3): 4.60, (4, 4): 4.73,
          (9, 1): 5.44, (9, 2): 6.09, (9, 3): 6.53, (9, 4): 6.84,
          (19, 1): 6.68, (19, 2): 7.66, (19, 3): 8.36, (19, 4): 8.89,
          (39, 1): 7.84, (39, 2): 9.11, (39, 3): 10.04, (39, 4): 10.79}
SERIAL_REFERENCE = 10.73  # Clark-Scarf echelon base-stock on the 4-location serial system (ANCHORS.md)


@dataclass(frozen=True)
class Location:
    """A stock point: its role, holding cost per unit left after the period, and (stores) the lost-sale/backlog cost."""

    name: str
    role: str
    holding: float
    penalty: float = 0.0


@dataclass(frozen=True)
class Edge:
    """A supply link: ``src`` ships to ``dst`` (src -1 is the unlimited outside supplier), arriving ``lead_time`` later."""

    src: int
    dst: int
    lead_time: int


@dataclass(frozen=True)
class Demand:
    """Per-store demand per period: Poisson(mean), Normal clipped at 0, correlated Normal, or a history table."""

    kind: str
    mean: tuple[float, ...]
    std: tuple[float, ...] = ()
    correlation: float = 0.0
    path: str = ""  # history: a csv or parquet file, one column per store, one row per period

    @property
    def discrete(self) -> bool:
        return self.kind == "poisson"


@dataclass(frozen=True)
class InventoryInstance:
    """A setting plus the sizes and seed of its scenario sets; stores come first among the locations."""

    name: str
    locations: tuple[Location, ...]
    edges: tuple[Edge, ...]
    demand: Demand
    lost_sales: bool = True
    periods: int = 50  # training and dev episode length
    warmup: int = 30  # periods left out of the reported dev cost
    train_scenarios: int = 32768
    dev_scenarios: int = 4096
    test_scenarios: int = 2048
    test_periods: int = 500
    test_warmup: int = 100
    seed: int = 0
    reference: Reference | None = None
    setting: str = ""  # the built-in generator it came from ("" for a file written in full)
    params: dict[str, Any] = field(default_factory=dict)
    problem: str = "inventory"

    @property
    def n_stores(self) -> int:
        return sum(1 for loc in self.locations if loc.role == "store")

    @property
    def n_locations(self) -> int:
        return len(self.locations)

    @property
    def max_lead(self) -> int:
        return max(e.lead_time for e in self.edges)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["reference"] = None if self.reference is None else dataclasses.asdict(self.reference)
        return out


# --- built-in settings -------------------------------------------------------------------------

def _one_store(lost: bool, p: float = 9.0, lead_time: int = 1, h: float = 1.0, mean: float = 5.0,
               std: float = 1.6, seed: int = 0) -> dict[str, Any]:
    lead_time = int(lead_time)
    if lost:
        demand = Demand("poisson", (float(mean),))
        ref = None
        if (float(p), lead_time) in {(float(a), b) for a, b in ZIPKIN} and h == 1 and mean == 5:
            ref = Reference(ZIPKIN[(int(p), lead_time)], "Zipkin (2008) optimum (value iteration)")
        sizes = dict(train_scenarios=32768, dev_scenarios=4096, test_scenarios=2048, test_periods=500, test_warmup=100)
    else:
        demand = Demand("normal", (float(mean),), (float(std),))
        ref = Reference(backlog_optimum(p, h, std, lead_time), "newsvendor over L+1 periods (closed form)")
        sizes = dict(train_scenarios=8192, dev_scenarios=4096, test_scenarios=2048, test_periods=300, test_warmup=60)
    # an order reaches the cost L + 1 periods after it is placed: training episodes (and the warm-up left out
    # of the dev cost) grow with the lead time, or the orders of a long pipeline never meet their cost
    # (at L = 20 a 50-period episode trained a policy that drifted to 6x the optimum over 300 test periods)
    warmup = max(30, 2 * (lead_time + 1))
    sizes.update(warmup=warmup, periods=warmup + max(20, 2 * (lead_time + 1)))
    return dict(locations=(Location("store", "store", float(h), float(p)),), edges=(Edge(-1, 0, lead_time),),
                demand=demand, lost_sales=lost, reference=ref, **sizes)


def backlog_optimum(p: float, h: float, std: float, lead_time: int) -> float:
    """Optimal cost per period of one backlogged store with Normal demand: (p + h) sigma sqrt(L+1) phi(z)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(p / (p + h))
    return (p + h) * std * math.sqrt(lead_time + 1) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


SERIAL_H = (1.0, 0.5, 0.2, 0.1, 0.05, 0.03, 0.02)  # store, warehouse, then echelons upwards
SERIAL_L = (4, 3, 4, 2, 2, 3, 2)


def _serial(n_locations: int = 4, p: float = 9.0, mean: float = 5.0, std: float = 2.0, seed: int = 0) -> dict[str, Any]:
    n = int(n_locations)
    if not 2 <= n <= len(SERIAL_H):
        raise UsageError(f"serial: n_locations={n}: expected 2 to {len(SERIAL_H)}")
    names = ["store", "warehouse"] + [f"echelon{k}" for k in range(1, n - 1)]
    roles = ["store", "warehouse"] + ["echelon"] * (n - 2)
    locs = tuple(Location(names[i], roles[i], SERIAL_H[i], float(p) if i == 0 else 0.0) for i in range(n))
    edges = tuple(Edge(i + 1 if i + 1 < n else -1, i, SERIAL_L[i]) for i in range(n))
    ref = Reference(SERIAL_REFERENCE, "Clark-Scarf echelon base-stock (ANCHORS.md)") \
        if n == 4 and p == 9 and mean == 5 and std == 2 else None
    return dict(locations=locs, edges=edges, demand=Demand("normal", (float(mean),), (float(std),)), lost_sales=False,
                reference=ref, train_scenarios=8192, dev_scenarios=2048, test_scenarios=1024, test_periods=300,
                test_warmup=100, periods=80, warmup=40)


def _random_stores(n: int, seed: int, costs: bool) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray, np.ndarray]:
    rng = np.random.default_rng([7919, int(seed), int(n)])
    mean = rng.uniform(2.5, 7.5, n)
    cv = rng.uniform(0.25, 0.5, n)
    h = rng.uniform(0.7, 1.3, n) if costs else np.ones(n)
    p = rng.uniform(6.3, 11.7, n) if costs else np.full(n, 9.0)
    return tuple(np.round(mean, 4)), tuple(np.round(mean * cv, 4)), np.round(h, 4), np.round(p, 4)


def _one_warehouse(n_stores: int = 10, lead_time: int = 2, warehouse_lead_time: int = 3, seed: int = 0) -> dict[str, Any]:
    n = int(n_stores)
    if not 1 <= n <= 100:
        raise UsageError(f"one_warehouse: n_stores={n}: expected 1 to 100")
    mean, std, h, p = _random_stores(n, seed, costs=True)
    locs = tuple(Location(f"store{i}", "store", float(h[i]), float(p[i])) for i in range(n)) + \
        (Location("warehouse", "warehouse", 0.3),)
    edges = tuple(Edge(n, i, int(lead_time)) for i in range(n)) + (Edge(-1, n, int(warehouse_lead_time)),)
    return dict(locations=locs, edges=edges, demand=Demand("mvnormal", mean, std, 0.5), lost_sales=True,
                train_scenarios=8192, dev_scenarios=1024, test_scenarios=256, test_periods=150, test_warmup=50,
                periods=50, warmup=20)


def _transshipment(n_stores: int = 3, p: float = 9.0, lead_time: int = 4, warehouse_lead_time: int = 3,
                   seed: int = 0) -> dict[str, Any]:
    n = int(n_stores)
    mean, std, _, _ = _random_stores(n, seed, costs=False)
    locs = tuple(Location(f"store{i}", "store", 1.0, float(p)) for i in range(n)) + (Location("centre", "transship", 0.0),)
    edges = tuple(Edge(n, i, int(lead_time)) for i in range(n)) + (Edge(-1, n, int(warehouse_lead_time)),)
    demand = Demand("mvnormal", mean, std, 0.5)
    inst = dict(locations=locs, edges=edges, demand=demand, lost_sales=False, train_scenarios=8192,
                dev_scenarios=1024, test_scenarios=256, test_periods=150, test_warmup=50, periods=60, warmup=30)
    inst["reference"] = Reference(pooled_newsvendor_bound(locs, edges, demand),
                                  "pooled newsvendor lower bound")
    return inst


def _many_warehouses(n_warehouses: int = 3, n_stores: int = 20, seed: int = 0) -> dict[str, Any]:
    w, n = int(n_warehouses), int(n_stores)
    mean, std, h, p = _random_stores(n, seed, costs=True)
    rng = np.random.default_rng([104729, int(seed), w, n])
    locs = tuple(Location(f"store{i}", "store", float(h[i]), float(p[i])) for i in range(n)) + \
        tuple(Location(f"warehouse{k}", "warehouse", 0.3) for k in range(w))
    edges = tuple(Edge(n + k, i, int(rng.integers(2, 5))) for i in range(n) for k in range(w)) + \
        tuple(Edge(-1, n + k, 3) for k in range(w))
    return dict(locations=locs, edges=edges, demand=Demand("mvnormal", mean, std, 0.5), lost_sales=True,
                train_scenarios=4096, dev_scenarios=512, test_scenarios=128, test_periods=120, test_warmup=40,
                periods=50, warmup=20)


BUILTINS = {
    "one_store_lost": lambda **kw: _one_store(True, **kw),
    "one_store_backlog": lambda **kw: _one_store(False, **{"p": 4.0, **kw}),
    "serial": _serial,
    "transshipment": _transshipment,
    "one_warehouse": _one_warehouse,
    "many_warehouses": _many_warehouses,
}
SIZE_FIELDS = ("periods", "warmup", "train_scenarios", "dev_scenarios", "test_scenarios", "test_periods",
               "test_warmup", "seed")


def build(setting: str, **params: Any) -> InventoryInstance:
    """The built-in ``setting`` with its parameters (p, lead_time, n_stores, ...) and scenario sizes overridden."""
    if setting not in BUILTINS:
        raise UsageError(f"unknown inventory setting {setting!r}: expected one of {', '.join(BUILTINS)} or a .yaml/.json file")
    sizes = {k: int(params.pop(k)) for k in list(params) if k in SIZE_FIELDS and k != "seed"}
    if "seed" in params:
        params["seed"] = int(params["seed"])
        sizes["seed"] = params["seed"]
    ref_override = params.pop("reference", None)
    try:
        fields_ = BUILTINS[setting](**params)
    except TypeError as exc:
        import inspect

        fn = BUILTINS[setting]
        args = "p, lead_time, h, mean" if setting.startswith("one_store") else \
            ", ".join(inspect.signature(fn).parameters)
        raise UsageError(f"setting {setting}: bad parameter ({exc}); it takes {args}") from None
    fields_.update(sizes)
    suffix = "".join(f"-{k}{_fmt(v)}" for k, v in _canonical(setting, params).items())
    inst = InventoryInstance(name=setting + suffix, setting=setting, params=dict(params), **fields_)
    if ref_override is not None:
        inst = dataclasses.replace(inst, reference=Reference(float(ref_override), "--set reference"))
    check(inst)
    return inst


NAME_DEFAULTS = {
    "one_store_lost": {"p": 9.0, "lead_time": 1}, "one_store_backlog": {"p": 4.0, "lead_time": 1},
    "serial": {"n_locations": 4}, "transshipment": {"n_stores": 3}, "one_warehouse": {"n_stores": 10},
    "many_warehouses": {"n_warehouses": 3, "n_stores": 20},
}
OMIT_DEFAULTS = {"h": 1.0, "mean": 5.0, "seed": 0}


def _canonical(setting: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that name an instance: the main ones always, the others when not at their default."""
    out = {**NAME_DEFAULTS.get(setting, {}), **params}
    return {k: v for k, v in out.items() if not (k in OMIT_DEFAULTS and v == OMIT_DEFAULTS[k])}


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (float, int)) else str(v)


def check(inst: InventoryInstance) -> None:
    """One-line error for an inconsistent setting (roles, edges, lead times, demand shapes, sizes)."""
    n, nl = inst.n_stores, inst.n_locations
    if n == 0:
        raise OpsrlError(f"setting {inst.name}: has no store")
    if any(loc.role not in ROLES for loc in inst.locations):
        bad = next(loc for loc in inst.locations if loc.role not in ROLES)
        raise OpsrlError(f"setting {inst.name}: location {bad.name} has role {bad.role!r}, expected one of {', '.join(ROLES)}")
    if any(loc.role == "store" for loc in inst.locations[n:]):
        raise OpsrlError(f"setting {inst.name}: stores must come first among the locations")
    for e in inst.edges:
        if not (-1 <= e.src < nl and 0 <= e.dst < nl) or e.src == e.dst:
            raise OpsrlError(f"setting {inst.name}: edge {e.src}->{e.dst} names a location outside 0..{nl - 1} (-1 is the supplier)")
        if e.lead_time < 1:
            raise OpsrlError(f"setting {inst.name}: edge {e.src}->{e.dst} has lead time {e.lead_time}, expected >= 1")
        if e.src >= 0 and inst.locations[e.src].role == "store":
            raise OpsrlError(f"setting {inst.name}: edge {e.src}->{e.dst} ships out of a store")
    fed = {e.dst for e in inst.edges}
    if missing := [i for i in range(nl) if i not in fed]:
        raise OpsrlError(f"setting {inst.name}: location {inst.locations[missing[0]].name} has no supplier edge")
    d = inst.demand
    if d.kind not in DEMANDS:
        raise OpsrlError(f"setting {inst.name}: demand kind {d.kind!r}, expected one of {', '.join(DEMANDS)}")
    if d.kind != "history" and len(d.mean) != n:
        raise OpsrlError(f"setting {inst.name}: demand mean has {len(d.mean)} values for {n} stores")
    if d.kind in ("normal", "mvnormal") and len(d.std) != n:
        raise OpsrlError(f"setting {inst.name}: demand std has {len(d.std)} values for {n} stores")
    if d.kind == "mvnormal" and not -1.0 / max(n - 1, 1) < d.correlation < 1.0 and n > 1:
        raise OpsrlError(f"setting {inst.name}: correlation {d.correlation} makes no valid covariance for {n} stores")
    if inst.warmup >= inst.periods or inst.test_warmup >= inst.test_periods:
        raise OpsrlError(f"setting {inst.name}: warm-up must be shorter than the horizon")
    for k in ("train_scenarios", "dev_scenarios", "test_scenarios", "periods", "test_periods"):
        if getattr(inst, k) < 1:
            raise OpsrlError(f"setting {inst.name}: {k} must be >= 1, got {getattr(inst, k)}")


def pooled_newsvendor_bound(locations: tuple[Location, ...], edges: tuple[Edge, ...], demand: Demand) -> float:
    """Lower bound per period per store for a transshipment network (backlog, common h and p): one pooled
    newsvendor on total demand over the total lead time plus one period."""
    from statistics import NormalDist

    stores = [loc for loc in locations if loc.role == "store"]
    n = len(stores)
    h, p = stores[0].holding, stores[0].penalty
    lead = {e.dst: e.lead_time for e in edges}
    centre = next(e.src for e in edges if e.dst == 0)
    periods = lead[0] + lead[centre] + 1
    sd = np.asarray(demand.std)
    cov = demand.correlation * np.outer(sd, sd) + (1 - demand.correlation) * np.diag(sd ** 2)
    sigma = math.sqrt(periods * cov.sum())
    z = NormalDist().inv_cdf(p / (p + h))
    return (p + h) * sigma * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / n


# --- scenarios ---------------------------------------------------------------------------------

_SCENARIO_CACHE: dict[tuple[Any, ...], np.ndarray] = {}


def scenarios(inst: InventoryInstance, split: str, count: int | None = None, periods: int | None = None) -> np.ndarray:
    """Demand array (count, periods, n_stores) of a fixed scenario set: seeded by the setting seed and split."""
    if split not in SPLITS:
        raise UsageError(f"scenario split {split!r}: expected one of {', '.join(SPLITS)}")
    default_count = {"train": inst.train_scenarios, "dev": inst.dev_scenarios, "test": inst.test_scenarios}[split]
    count = default_count if count is None else int(count)
    periods = (inst.test_periods if split == "test" else inst.periods) if periods is None else int(periods)
    key = (json.dumps(inst.demand.__dict__, default=str), inst.seed, split, count, periods)
    if key not in _SCENARIO_CACHE:
        if len(_SCENARIO_CACHE) > 16:
            _SCENARIO_CACHE.clear()
        _SCENARIO_CACHE[key] = _sample(inst, split, count, periods)
    return _SCENARIO_CACHE[key]


def _sample(inst: InventoryInstance, split: str, count: int, periods: int) -> np.ndarray:
    d = inst.demand
    rng = np.random.default_rng([int(inst.seed), SPLITS.index(split), 2718])
    n = inst.n_stores
    if d.kind == "poisson":
        return rng.poisson(np.asarray(d.mean), size=(count, periods, n)).astype(np.float32)
    if d.kind == "normal":
        x = rng.normal(np.asarray(d.mean), np.asarray(d.std), size=(count, periods, n))
        return np.maximum(x, 0.0).astype(np.float32)
    if d.kind == "mvnormal":
        sd = np.asarray(d.std)
        cov = d.correlation * np.outer(sd, sd) + (1 - d.correlation) * np.diag(sd ** 2)
        x = rng.multivariate_normal(np.asarray(d.mean), cov, size=(count, periods), method="cholesky")
        return np.maximum(x, 0.0).astype(np.float32)
    table = read_history(d.path, n)
    third = {"train": (0.0, 0.6), "dev": (0.6, 0.8), "test": (0.8, 1.0)}[split]
    lo, hi = int(third[0] * len(table)), int(third[1] * len(table))
    if hi - lo < periods:
        raise OpsrlError(f"{d.path}: the {split} part of the history holds {hi - lo} periods, fewer than the {periods} "
                         f"an episode needs (history is split 60/20/20 into train/dev/test)")
    starts = rng.integers(lo, hi - periods + 1, size=count)
    return np.stack([table[s:s + periods] for s in starts]).astype(np.float32)


def read_history(path: str, n_stores: int) -> np.ndarray:
    """A demand history (csv or parquet, one numeric column per store, one row per period) as an array."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InstanceFileError(p, "demand history file not found")
    try:
        frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    except Exception as exc:
        raise InstanceFileError(p, f"unreadable demand history ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    frame = frame.select_dtypes("number")
    if frame.shape[1] != n_stores:
        raise InstanceFileError(p, f"demand history has {frame.shape[1]} numeric columns, expected one per store ({n_stores})")
    values = frame.to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InstanceFileError(p, "demand history holds negative or missing values")
    return values


# --- decisions (solution data) -----------------------------------------------------------------

def encode_orders(orders: np.ndarray, discrete: bool) -> dict[str, Any]:
    """Compact JSON-able form of an order array (scenarios, periods, edges): zlib + base64."""
    orders = np.asarray(orders)
    if discrete:
        arr, dtype, scale = np.rint(orders).astype(np.uint16), "uint16", 1.0
    elif orders.size == 0 or orders.max() * 100.0 < 65000:
        arr, dtype, scale = np.rint(orders * 100.0).astype(np.uint16), "uint16", 100.0
    else:
        arr, dtype, scale = np.rint(orders * 100.0).astype(np.uint32), "uint32", 100.0
    blob = base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode("ascii")
    return {"encoding": "zlib-base64", "dtype": dtype, "scale": scale, "shape": list(orders.shape), "orders": blob}


def decode_orders(data: Any) -> np.ndarray | str:
    """The order array of a solution, or a one-line reason it cannot be read."""
    if isinstance(data, dict) and data.get("encoding") == "zlib-base64":
        try:
            raw = zlib.decompress(base64.b64decode(data["orders"]))
            arr = np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"])
            return arr.astype(np.float64) / float(data.get("scale", 1.0))
        except Exception as exc:
            return f"unreadable order data ({type(exc).__name__})"
    if isinstance(data, dict) and "orders" in data:
        data = data["orders"]
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        return "orders must be a numeric array (scenarios x periods x edges)"
    return arr


# --- the problem -------------------------------------------------------------------------------

OVERRIDABLE_FILE = ("name", "seed", "test_scenarios", "test_periods", "test_warmup", "train_scenarios",
                    "dev_scenarios", "periods", "warmup", "reference", "p", "h")


class Inventory(Problem):
    name = "inventory"
    family = "inventory"
    sense = "min"
    description = "inventory control on supply networks: orders per edge per period, cost per period per store"
    default_solver = "base-stock"

    def generate(self, size: int, seed: int, index: int = 0) -> InventoryInstance:
        """One warehouse with ``size`` stores (its random costs and demands seeded by ``seed`` and ``index``)."""
        return build("one_warehouse", n_stores=size, seed=int(seed) * 1000 + int(index))

    def builtin(self, name: str) -> InventoryInstance | None:
        return build(name) if name in BUILTINS else None

    def load(self, path: Path) -> list[InventoryInstance]:
        return [load_setting(Path(path))]

    def save(self, instances: list[InventoryInstance], path: Path) -> None:
        path = Path(path)
        docs = [i.to_dict() if not i.setting else {"setting": i.setting, **i.params,
                                                   **{k: getattr(i, k) for k in SIZE_FIELDS}} for i in instances]
        if len(docs) != 1:
            raise UsageError(f"{path}: an inventory setting file holds one setting, got {len(docs)}")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(docs[0], sort_keys=False))
        else:
            path.write_text(json.dumps(docs[0], indent=2) + "\n")

    def override(self, instance: InventoryInstance, key: str, value: str) -> InventoryInstance:
        if instance.setting and key not in ("name", "reference"):
            import inspect

            fn = BUILTINS[instance.setting]
            allowed = set(SIZE_FIELDS) | ({"p", "lead_time", "h", "mean", "std"} if instance.setting.startswith("one_store")
                                          else set(inspect.signature(fn).parameters))
            if key not in allowed:
                raise UsageError(f"--set {key}: setting {instance.setting} has no parameter {key!r} "
                                 f"(parameters: {', '.join(sorted(allowed))})")
            new = coerce(value, 0.0 if key in ("p", "h", "mean", "std") else 0, f"--set {key}")
            if isinstance(new, (int, float)) and new < 0:
                raise UsageError(f"--set {key}={value}: expected a non-negative number")
            # sizes set explicitly are kept; the others follow the new parameters (episodes grow with the lead time)
            base = build(instance.setting, **instance.params)
            sizes = {k: getattr(instance, k) for k in SIZE_FIELDS if getattr(instance, k) != getattr(base, k)}
            return build(instance.setting, **{**instance.params, **sizes, key: new})
        if key == "reference":
            return dataclasses.replace(instance, reference=Reference(float(coerce(value, 0.0, "--set reference")),
                                                                     "--set reference"))
        if key == "name":
            return dataclasses.replace(instance, name=value)
        if key in ("p", "h"):
            x = float(coerce(value, 0.0, f"--set {key}"))
            locs = tuple(dataclasses.replace(loc, **({"penalty": x} if key == "p" else {"holding": x}))
                         if loc.role == "store" else loc for loc in instance.locations)
            return dataclasses.replace(instance, locations=locs, reference=None)
        if key in SIZE_FIELDS:
            out = dataclasses.replace(instance, **{key: int(coerce(value, 0, f"--set {key}"))})
            check(out)
            return out
        raise UsageError(f"--set {key}: an inventory setting written in full has no parameter {key!r} "
                         f"(parameters: {', '.join(OVERRIDABLE_FILE)})")

    def evaluate(self, instance: InventoryInstance, solution: Any) -> Evaluation:
        orders = decode_orders(solution)
        if isinstance(orders, str):
            return Evaluation(float("nan"), False, (orders,))
        shape = (instance.test_scenarios, instance.test_periods, len(instance.edges))
        if orders.shape != shape:
            return Evaluation(float("nan"), False, (f"orders have shape {tuple(orders.shape)}, expected {shape} "
                                                    f"(test scenarios x periods x edges)",))
        if not np.isfinite(orders).all():
            return Evaluation(float("nan"), False, ("orders hold NaN or infinite values",))
        violations = []
        if (orders < 0).any():
            violations.append(f"{int((orders < 0).sum())} negative orders")
        if instance.demand.discrete and np.abs(orders - np.rint(orders)).max() > 1e-6:
            violations.append("orders must be integers where demand is discrete (Poisson)")
        from opsrl.inventory.simulator import replay_cost

        cost = replay_cost(instance, np.maximum(orders, 0.0))
        return Evaluation(cost, not violations, tuple(violations))


def load_setting(path: Path) -> InventoryInstance:
    """A setting from YAML or JSON: ``{setting: NAME, param: value, ...}`` or a full network."""
    if not path.is_file():
        raise InstanceFileError(path, "setting file not found")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(path.read_text())
        elif path.suffix == ".json":
            doc = json.loads(path.read_text())
        else:
            raise InstanceFileError(path, "expected a .yaml, .yml or .json inventory setting")
    except InstanceFileError:
        raise
    except Exception as exc:
        raise InstanceFileError(path, f"unreadable setting ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise InstanceFileError(path, "a setting file holds one mapping")
    try:
        if "setting" in doc:
            doc = dict(doc)
            return build(str(doc.pop("setting")), **doc)
        for key in ("locations", "edges", "demand"):
            if key not in doc:
                raise InstanceFileError(path, f"missing field {key!r} (or name a built-in with 'setting')")
        locs = tuple(Location(**loc) for loc in doc["locations"])
        edges = tuple(Edge(int(e["src"]), int(e["dst"]), int(e["lead_time"])) for e in doc["edges"])
        dem = dict(doc["demand"])
        if dem.get("path") and not Path(dem["path"]).is_absolute():
            dem["path"] = str((path.parent / dem["path"]).resolve())
        dem["mean"] = tuple(float(x) for x in dem.get("mean", ()))
        dem["std"] = tuple(float(x) for x in dem.get("std", ()))
        demand = Demand(**dem)
        extra = {k: doc[k] for k in ("lost_sales", *SIZE_FIELDS) if k in doc}
        ref = doc.get("reference")
        inst = InventoryInstance(name=str(doc.get("name", path.stem)), locations=locs, edges=edges, demand=demand,
                                 reference=Reference(float(ref["value"]), str(ref.get("source", path.name)))
                                 if isinstance(ref, dict) else None, **extra)
    except InstanceFileError:
        raise
    except OpsrlError as exc:
        raise InstanceFileError(path, str(exc)) from None
    except (TypeError, KeyError, ValueError) as exc:
        raise InstanceFileError(path, f"malformed setting ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    try:
        check(inst)
    except OpsrlError as exc:
        raise InstanceFileError(path, str(exc)) from None
    return inst


INVENTORY = register_problem(Inventory())
