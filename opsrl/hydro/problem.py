"""Hydrothermal systems and instances: loaders, the synthetic generator, and the cost of a dispatch.

A system holds hydro plants (storage and turbine bounds, production factor, cascade links for
turbined and spilled water), thermal units, bus loads, the deficit cost, the flow-to-volume factor
``k`` and an optional DC network, plus the per-stage inflow support (scenarios x plants, sampled
stagewise independently). An instance is a system, a horizon (``stages`` simulated, the first
``report`` of them costed) and its fixed out-of-sample inflow paths (``scenarios`` paths drawn from
``seed``), shared by every policy so that comparisons are paired.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from opsrl.core.errors import InstanceFileError, OpsrlError, UsageError
from opsrl.core.registry import Problem, coerce, register_problem
from opsrl.core.types import Evaluation, Reference

FORMAT = "opsrl-hydro-1"
TOL = 1e-4  # feasibility tolerance (decisions travel as float32)


@dataclass
class HydroSystem:
    """A hydrothermal system; arrays are indexed by plant (H), thermal unit (G), bus (B) and line (L).

    Units follow the HydroPowerModels files: volumes in storage units, flows in flow units, power in
    per unit of ``base_mva``. Hydro power = ``prod * q / base_mva``; the water balance of plant h is
    ``v = v_prev + k * (w - q + sum of upstream q) - s + sum of upstream s`` (spill is a volume).
    """

    name: str
    hydro_names: list[str]
    vmin: np.ndarray
    vmax: np.ndarray
    v0: np.ndarray
    qmin: np.ndarray
    qmax: np.ndarray
    prod: np.ndarray
    hydro_bus: np.ndarray
    hydro_cost: np.ndarray  # per pu of hydro power
    spill_cost: np.ndarray  # per unit of spilled volume
    down_turn: np.ndarray  # downstream plant of the turbined water, -1 for none
    down_spill: np.ndarray  # downstream plant of the spilled water, -1 for none
    gmin: np.ndarray
    gmax: np.ndarray
    gcost: np.ndarray
    gbus: np.ndarray
    n_bus: int
    load_base: np.ndarray  # pu per bus before ``load_scale``
    deficit_cost: float
    k: float
    base_mva: float = 100.0
    stage_hours: float = 1.0
    load_scale: float = 1.0
    line_from: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    line_to: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    line_b: np.ndarray = field(default_factory=lambda: np.zeros(0))
    line_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ref_bus: int = 0
    inflow_support: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 0)))  # (period, N, H)
    inflow_prob: np.ndarray = field(default_factory=lambda: np.ones((1, 1)))  # (period, N)

    @property
    def n_hydro(self) -> int:
        return len(self.vmin)

    @property
    def n_thermal(self) -> int:
        return len(self.gmin)

    @property
    def load(self) -> np.ndarray:
        return self.load_base * self.load_scale

    @property
    def has_network(self) -> bool:
        return len(self.line_from) > 0

    def support(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Inflow realisations (N, H) and their probabilities at stage ``t`` (the data is tiled cyclically)."""
        p = len(self.inflow_support)
        return self.inflow_support[t % p], self.inflow_prob[t % p]

    def fingerprint(self) -> str:
        """A short hash of everything a trained policy depends on (not the horizon or test paths)."""
        h = hashlib.sha256()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            h.update(f.name.encode())
            h.update(np.asarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
        return h.hexdigest()[:16]

    def copper_plate(self) -> "HydroSystem":
        """The same system with every bus merged into one (no network limits)."""
        z = np.zeros(0, int)
        return dataclasses.replace(self, n_bus=1, load_base=np.array([self.load_base.sum()]),
                                   hydro_bus=np.zeros(self.n_hydro, int), gbus=np.zeros(self.n_thermal, int),
                                   line_from=z, line_to=z, line_b=np.zeros(0), line_rate=np.zeros(0), ref_bus=0)

    def ptdf(self) -> np.ndarray:
        """Power transfer distribution factors (L, B): line flows per unit of bus injection (reference bus slack)."""
        nb, nl = self.n_bus, len(self.line_from)
        inc = np.zeros((nl, nb))
        inc[np.arange(nl), self.line_from] = 1.0
        inc[np.arange(nl), self.line_to] = -1.0
        bbus = inc.T @ (self.line_b[:, None] * inc)
        keep = [i for i in range(nb) if i != self.ref_bus]
        inv = np.zeros((nb, nb))
        try:
            inv[np.ix_(keep, keep)] = np.linalg.inv(bbus[np.ix_(keep, keep)])
        except np.linalg.LinAlgError:
            raise OpsrlError(f"system {self.name}: the network is not connected") from None
        return (self.line_b[:, None] * inc) @ inv


@dataclass
class HydroInstance:
    """A system, a horizon and the fixed out-of-sample inflow paths every policy is simulated on."""

    name: str
    system: HydroSystem
    stages: int  # stages simulated (policies plan over these)
    report: int  # the first ``report`` stages are costed
    scenarios: int = 100  # out-of-sample paths
    seed: int = 12345  # seed of the out-of-sample paths
    reference: Reference | None = None
    problem: ClassVar[str] = "hydro"
    _paths: np.ndarray | None = field(default=None, repr=False, compare=False)

    def test_paths(self) -> np.ndarray:
        """The out-of-sample inflow paths (scenarios, stages, H), stagewise independent draws of the support."""
        if self._paths is None:
            self._paths = sample_paths(self.system, self.stages, self.scenarios, np.random.default_rng(self.seed))
        return self._paths


def sample_paths(system: HydroSystem, stages: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` inflow paths over ``stages``: at each stage one joint realisation drawn from the support."""
    out = np.empty((count, stages, system.n_hydro))
    for t in range(stages):
        sup, prob = system.support(t)
        idx = rng.choice(len(prob), size=count, p=prob / prob.sum())
        out[:, t] = sup[idx]
    return out


# ---------------------------------------------------------------- loaders


def _fail(path: Path, msg: str) -> InstanceFileError:
    return InstanceFileError(path, msg)


def load_case_folder(path: Path, *, k: float | None = None, load_scale: float = 1.0) -> HydroSystem:
    """A HydroPowerModels-style case folder: PowerModels.json + hydro.json + inflows.csv (+ scenarioprobability.csv).

    ``k`` defaults to 0.0036 * stage_hours (flows per second to volume over the stage); the columns of
    inflows.csv are blocks of N scenarios per plant, in the order of hydro.json.
    """
    path = Path(path)
    for fname in ("PowerModels.json", "hydro.json", "inflows.csv"):
        if not (path / fname).is_file():
            raise _fail(path, f"not a hydro case folder: {fname} is missing (expected PowerModels.json, "
                              "hydro.json, inflows.csv)")
    try:
        pm = json.loads((path / "PowerModels.json").read_text())
        hy = json.loads((path / "hydro.json").read_text())
        rows = [[float(x) for x in r] for r in csv.reader((path / "inflows.csv").read_text().splitlines()) if r]
    except (json.JSONDecodeError, ValueError) as exc:
        raise _fail(path, f"unreadable case file ({exc})") from None
    try:
        return _system_from_case(path, pm, hy, np.array(rows), k, load_scale)
    except (KeyError, TypeError, IndexError) as exc:
        raise _fail(path, f"malformed case: missing or bad field {exc}") from None


def _system_from_case(path: Path, pm: dict, hy: dict, inflows: np.ndarray, k: float | None,
                      load_scale: float) -> HydroSystem:
    base = float(pm.get("baseMVA", 100.0))
    buses = sorted(pm["bus"].values(), key=lambda b: int(b["index"]))
    bus_of = {int(b["index"]): i for i, b in enumerate(buses)}
    ref = next((bus_of[int(b["index"])] for b in buses if int(b.get("bus_type", 1)) == 3), 0)
    plants = hy["Hydrogenerators"]
    hydro_gens = {int(p["index_grid"]) for p in plants}
    gens = {int(g["index"]): g for g in pm["gen"].values() if int(g.get("gen_status", 1)) == 1}
    thermal = [g for i, g in sorted(gens.items()) if i not in hydro_gens]

    def lin_cost(g: dict) -> float:
        c = g.get("cost") or []
        n = int(g.get("ncost", len(c)))
        return float(c[-2]) if n >= 2 and len(c) >= 2 else 0.0

    load = np.zeros(len(buses))
    for ld in pm.get("load", {}).values():
        if int(ld.get("status", 1)) == 1:
            load[bus_of[int(ld["load_bus"])]] += float(ld["pd"])
    lines = [b for b in pm.get("branch", {}).values() if int(b.get("br_status", 1)) == 1]
    lines.sort(key=lambda b: int(b["index"]))
    r = np.array([float(b["br_r"]) for b in lines])
    x = np.array([float(b["br_x"]) for b in lines])
    index_of = {int(p["index"]): i for i, p in enumerate(plants)}

    def link(p: dict, key: str) -> int:
        ds = p.get(key) or []
        if len(ds) > 1:
            raise _fail(path, f"hydro plant {p['index']}: more than one {key} (expected at most one)")
        return index_of[int(ds[0])] if ds else -1

    h = len(plants)
    n_scen = inflows.shape[1] // h if h else 0
    if h == 0 or inflows.shape[1] != n_scen * h:
        raise _fail(path, f"inflows.csv has {inflows.shape[1]} columns, expected a multiple of {h} plants")
    support = inflows.reshape(len(inflows), h, n_scen).transpose(0, 2, 1)  # (period, N, H)
    prob = np.full((len(inflows), n_scen), 1.0 / n_scen)
    probfile = path / "scenarioprobability.csv"
    if probfile.is_file():
        rows = [[float(v) for v in row] for row in csv.reader(probfile.read_text().splitlines()) if row]
        prob = np.array(rows)
        if prob.shape != (len(inflows), n_scen):
            raise _fail(path, f"scenarioprobability.csv is {prob.shape}, expected {(len(inflows), n_scen)}")
    hours = float(hy.get("stage_hours", 1))
    gen_cost = {int(g["index"]): lin_cost(g) for g in gens.values()}

    def clean(v: float) -> float:  # the Bolivia file holds denormal garbage (1e-316) for zeros
        return 0.0 if abs(v) < 1e-200 else float(v)

    return HydroSystem(
        name=str(pm.get("name") or path.name),
        hydro_names=[str(p.get("name", p["index"])).strip() for p in plants],
        vmin=np.array([clean(p["min_volume"]) for p in plants]),
        vmax=np.array([clean(p["max_volume"]) for p in plants]),
        v0=np.array([clean(p["initial_volume"]) for p in plants]),
        qmin=np.array([clean(p["min_turn"]) for p in plants]),
        qmax=np.array([clean(p["max_turn"]) for p in plants]),
        prod=np.array([float(p["production_factor"]) for p in plants]),
        hydro_bus=np.array([bus_of[int(gens[int(p["index_grid"])]["gen_bus"])] for p in plants]),
        hydro_cost=np.array([gen_cost.get(int(p["index_grid"]), 0.0) for p in plants]),
        spill_cost=np.array([clean(p.get("spill_cost", 0.0)) for p in plants]),
        down_turn=np.array([link(p, "downstream_turn") for p in plants], int),
        down_spill=np.array([link(p, "downstream_spill") for p in plants], int),
        gmin=np.array([float(g["pmin"]) for g in thermal]),
        gmax=np.array([float(g["pmax"]) for g in thermal]),
        gcost=np.array([lin_cost(g) for g in thermal]),
        gbus=np.array([bus_of[int(g["gen_bus"])] for g in thermal], int),
        n_bus=len(buses), load_base=load, deficit_cost=float(pm["cost_deficit"]) * base,
        k=0.0036 * hours if k is None else float(k), base_mva=base, stage_hours=hours, load_scale=load_scale,
        line_from=np.array([bus_of[int(b["f_bus"])] for b in lines], int),
        line_to=np.array([bus_of[int(b["t_bus"])] for b in lines], int),
        line_b=x / (r ** 2 + x ** 2), line_rate=np.array([float(b["rate_a"]) for b in lines]), ref_bus=ref,
        inflow_support=support, inflow_prob=prob)


# our own JSON format: {"format": "opsrl-hydro-1", "system": {field: value}, "stages", "report", ...}
_ARRAY_FIELDS = {f.name for f in dataclasses.fields(HydroSystem)} - {
    "name", "hydro_names", "n_bus", "deficit_cost", "k", "base_mva", "stage_hours", "load_scale", "ref_bus"}
_INT_FIELDS = {"hydro_bus", "down_turn", "down_spill", "gbus", "line_from", "line_to"}


def instance_to_json(inst: HydroInstance) -> dict[str, Any]:
    """The instance in our JSON format (every system field by name; arrays as nested lists)."""
    sys_ = {f.name: (getattr(inst.system, f.name).tolist() if f.name in _ARRAY_FIELDS else getattr(inst.system, f.name))
            for f in dataclasses.fields(HydroSystem)}
    return {"format": FORMAT, "name": inst.name, "stages": inst.stages, "report": inst.report,
            "scenarios": inst.scenarios, "seed": inst.seed, "system": sys_}


def instance_from_json(data: Any, path: Path) -> HydroInstance:
    """Read our JSON format; every missing or malformed field is a one-line error naming it."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(path, f"not an opsrl hydro file (expected \"format\": \"{FORMAT}\")")
    raw = data.get("system")
    if not isinstance(raw, dict):
        raise _fail(path, "missing \"system\" object")
    kwargs = {}
    for f in dataclasses.fields(HydroSystem):
        if f.name not in raw:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise _fail(path, f"system field {f.name!r} is missing")
        v = raw[f.name]
        try:
            kwargs[f.name] = np.asarray(v, dtype=int if f.name in _INT_FIELDS else float) \
                if f.name in _ARRAY_FIELDS else v
        except (TypeError, ValueError):
            raise _fail(path, f"system field {f.name!r} is not numeric") from None
    system = HydroSystem(**kwargs)
    check_system(system, path)
    try:
        return HydroInstance(str(data.get("name", path.stem)), system, int(data["stages"]),
                             int(data.get("report", data["stages"])), int(data.get("scenarios", 100)),
                             int(data.get("seed", 12345)))
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"bad horizon field {exc}") from None


def check_system(s: HydroSystem, path: Any = "system") -> None:
    """Shapes and signs consistent; raises InstanceFileError naming the first problem."""
    h, g = s.n_hydro, s.n_thermal
    for name in ("vmax", "v0", "qmin", "qmax", "prod", "hydro_bus", "hydro_cost", "spill_cost",
                 "down_turn", "down_spill"):
        if len(getattr(s, name)) != h:
            raise _fail(path, f"{name} has {len(getattr(s, name))} entries, expected {h} (one per hydro plant)")
    for name in ("gmax", "gcost", "gbus"):
        if len(getattr(s, name)) != g:
            raise _fail(path, f"{name} has {len(getattr(s, name))} entries, expected {g} (one per thermal unit)")
    if len(s.load_base) != s.n_bus:
        raise _fail(path, f"load_base has {len(s.load_base)} entries, expected n_bus={s.n_bus}")
    if np.any(s.vmax < s.vmin) or np.any(s.qmax < s.qmin) or np.any(s.gmax < s.gmin):
        raise _fail(path, "a bound pair has its upper value below its lower value")
    if s.inflow_support.ndim != 3 or s.inflow_support.shape[2] != h:
        raise _fail(path, f"inflow_support must be (period, scenarios, {h})")
    if s.inflow_prob.shape != s.inflow_support.shape[:2]:
        raise _fail(path, "inflow_prob must be (period, scenarios) like inflow_support")
    for arr in (s.down_turn, s.down_spill):
        if np.any((arr < -1) | (arr >= h)) or np.any(arr == np.arange(h)):
            raise _fail(path, "a cascade link points to a missing plant or to itself")


def synthetic_system(seed: int = 0, n_hydro: int = 4, n_thermal: int = 5) -> HydroSystem:
    """A seeded copper-plate system: two cascades with seasonal, correlated inflows (52-week period)."""
    rng = np.random.default_rng(seed)
    h, period, n_scen = n_hydro, 52, 10
    mean = rng.uniform(20, 60, h)
    phase = rng.uniform(0, 0.6, h)
    t = np.arange(period)
    season = 1.0 + 0.6 * np.sin(2 * np.pi * t[:, None] / period + phase[None, :])  # (period, H)
    common = rng.lognormal(0, 0.35, (period, n_scen, 1))
    own = rng.lognormal(0, 0.2, (period, n_scen, h))
    support = mean * season[:, None, :] * common * own
    down = np.full(h, -1)
    for i in range(0, h - 1, 2):  # plants 0->1, 2->3, ...: two-plant cascades
        down[i] = i + 1
    k = 1.0
    prod = rng.uniform(0.8, 1.2, h)
    qmax = 1.4 * (mean + np.where(np.isin(np.arange(h), down), mean[np.maximum(np.arange(h) - 1, 0)], 0))
    vmax = k * mean * rng.uniform(8, 20, h)
    hydro_power = float((prod * mean * (1 + np.isin(np.arange(h), down))).sum()) / 100.0
    gmax = np.full(n_thermal, hydro_power * 0.35)
    gcost = np.sort(rng.uniform(50, 400, n_thermal))
    return HydroSystem(
        name=f"synthetic-{seed}", hydro_names=[f"H{i}" for i in range(h)], vmin=np.zeros(h), vmax=vmax,
        v0=0.5 * vmax, qmin=np.zeros(h), qmax=qmax, prod=prod, hydro_bus=np.zeros(h, int),
        hydro_cost=np.zeros(h), spill_cost=np.full(h, 0.01), down_turn=down, down_spill=down.copy(),
        gmin=np.zeros(n_thermal), gmax=gmax, gcost=gcost, gbus=np.zeros(n_thermal, int), n_bus=1,
        load_base=np.array([hydro_power * 1.9]), deficit_cost=3000.0, k=k, base_mva=100.0, stage_hours=168.0,
        inflow_support=support, inflow_prob=np.full((period, n_scen), 1.0 / n_scen))


# ---------------------------------------------------------------- decisions and their cost


def encode(arr: np.ndarray) -> dict[str, Any]:
    """A float array as compact JSON: shape + base64 of float32 little-endian bytes."""
    a = np.ascontiguousarray(arr, dtype="<f4")
    return {"shape": list(a.shape), "f32": base64.b64encode(a.tobytes()).decode()}


def decode(obj: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Inverse of ``encode``, checking the shape; also takes nested lists."""
    try:
        if isinstance(obj, dict):
            a = np.frombuffer(base64.b64decode(obj["f32"]), dtype="<f4").astype(float)
            a = a.reshape(obj["shape"])
        else:
            a = np.asarray(obj, dtype=float)
    except (KeyError, ValueError, TypeError) as exc:
        raise OpsrlError(f"solution field {what!r} is unreadable ({exc})") from None
    if a.shape != shape:
        raise OpsrlError(f"solution field {what!r} has shape {a.shape}, expected {shape}")
    return a


def decisions(q: np.ndarray, s: np.ndarray, g: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    """Solution data: turbined flow, spill, thermal output, bus deficits (scenarios x stages x ...)."""
    return {"q": encode(q), "s": encode(s), "g": encode(g), "d": encode(d)}


def scenario_costs(inst: HydroInstance, data: Any) -> tuple[np.ndarray, list[str]]:
    """Re-simulate decisions on the test paths: per-scenario cost over the reported stages, and violations."""
    s_, sc, r = inst.system, inst.scenarios, inst.report
    if not isinstance(data, dict):
        raise OpsrlError("hydro solution must be an object with fields q, s, g, d")
    for key in ("q", "s", "g", "d"):
        if key not in data:
            raise OpsrlError(f"hydro solution has no field {key!r} (expected q, s, g, d)")
    h, g_, b = s_.n_hydro, s_.n_thermal, s_.n_bus
    q = decode(data["q"], (sc, r, h), "q")
    sp = decode(data["s"], (sc, r, h), "s")
    g = decode(data["g"], (sc, r, g_), "g")
    d = decode(data["d"], (sc, r, b), "d")
    w = inst.test_paths()[:, :r]
    viol: list[str] = []
    vt = TOL * np.maximum(1.0, s_.vmax)

    def check(bad: np.ndarray, msg: str) -> None:
        if np.any(bad) and len(viol) < 10:
            i, t = np.argwhere(bad.reshape(sc, r, -1).any(axis=2))[0]
            viol.append(f"scenario {i} stage {t}: {msg}")

    check(q < s_.qmin - TOL * np.maximum(1, s_.qmax), "turbined flow below its minimum")
    check(q > s_.qmax + TOL * np.maximum(1, s_.qmax), "turbined flow above turbine capacity")
    check(sp < -TOL, "negative spill")
    check(g < s_.gmin - TOL, "thermal output below its minimum")
    check(g > s_.gmax + TOL, "thermal output above capacity")
    check(d < -TOL, "negative deficit")
    up_q = np.zeros((sc, r, h))
    up_s = np.zeros((sc, r, h))
    for i in range(h):
        if s_.down_turn[i] >= 0:
            up_q[:, :, s_.down_turn[i]] += q[:, :, i]
        if s_.down_spill[i] >= 0:
            up_s[:, :, s_.down_spill[i]] += sp[:, :, i]
    delta = s_.k * (w - q + up_q) - sp + up_s
    vol = s_.v0 + np.cumsum(delta, axis=1)
    check(vol < s_.vmin - vt, "reservoir below its minimum volume (water balance)")
    check(vol > s_.vmax + vt, "reservoir above its maximum volume (water balance)")
    inj = np.zeros((sc, r, b))
    hp = s_.prod * q / s_.base_mva
    np.add.at(inj, (slice(None), slice(None), s_.hydro_bus), hp)
    np.add.at(inj, (slice(None), slice(None), s_.gbus), g)
    inj += d - s_.load
    check(np.abs(inj.sum(axis=2)) > TOL * max(1.0, s_.load.sum()), "generation + deficit does not meet load")
    if s_.has_network:
        flow = inj @ s_.ptdf().T
        check(np.abs(flow) > s_.line_rate + TOL, "line flow above its limit")
    cost = (g @ s_.gcost + hp @ s_.hydro_cost + s_.deficit_cost * d.sum(axis=2) + sp @ s_.spill_cost).sum(axis=1)
    return cost, viol


# ---------------------------------------------------------------- the problem


BUILTINS = ("case3", "bolivia", "synthetic")
_OVERRIDES = ("stages", "report", "scenarios", "seed", "k", "load_scale", "network")


def builtin_instance(name: str) -> HydroInstance | None:
    """case3 and bolivia (from the shared data folder) and the default synthetic system."""
    if name == "synthetic":
        return HydroInstance("synthetic", synthetic_system(0), stages=78, report=52)
    if name not in ("case3", "bolivia"):
        return None
    from opsrl.core.data import data_dir

    root = data_dir()
    folder = root / "hydro" / name if root is not None else None
    if folder is None or not folder.is_dir():
        raise OpsrlError(f"{name}: hydro case data not found (expected hydro/{name} under the data folder; "
                         "set OPSRL_DATA or put it at ../shared/data)")
    if name == "case3":
        return HydroInstance("case3", load_case_folder(folder), stages=12, report=12)
    # Bolivia: weekly stages, k = 0.0036 * 168 (see docs/hydro.md), loads scaled by 0.6 as in the SDDP runs
    return HydroInstance("bolivia", load_case_folder(folder, load_scale=0.6), stages=126, report=96)


class Hydro(Problem):
    name = "hydro"
    family = "hydro"
    sense = "min"
    description = "long-term hydrothermal dispatch under inflow uncertainty (mean out-of-sample cost)"
    default_solver = "sddp"

    def generate(self, size: int, seed: int, index: int = 0) -> HydroInstance:
        """A synthetic system drawn from ``seed + index`` with a horizon of ``size`` stages."""
        return HydroInstance(f"synthetic-{seed + index}-{size}", synthetic_system(seed + index), stages=size,
                             report=size)

    def load(self, path: Path) -> list[HydroInstance]:
        path = Path(path)
        if path.is_dir():
            system = load_case_folder(path)
            check_system(system, path)
            n = len(system.inflow_support)
            return [HydroInstance(path.name, system, stages=n, report=n)]
        if not path.is_file():
            raise InstanceFileError(path, "no such file or folder (expected a case folder or a .json file)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InstanceFileError(path, f"not valid JSON ({exc})") from None
        return [instance_from_json(data, path)]

    def save(self, instances: list[HydroInstance], path: Path) -> None:
        if len(instances) != 1:
            raise UsageError("hydro files hold one instance each")
        Path(path).write_text(json.dumps(instance_to_json(instances[0])) + "\n")

    def builtin(self, name: str) -> HydroInstance | None:
        """case3, bolivia, synthetic, or a case folder's path (the API reads only files itself)."""
        if name not in BUILTINS and Path(name).is_dir():
            return self.load(Path(name))[0]
        return builtin_instance(name)

    def validate(self, instance: HydroInstance) -> None:
        check_system(instance.system, instance.name)

    def override(self, instance: HydroInstance, key: str, value: str) -> HydroInstance:
        if key not in _OVERRIDES:
            raise UsageError(f"--set {key}: hydro has no field {key!r} (fields: {', '.join(_OVERRIDES)})")
        s = instance.system
        if key == "network":
            if value not in ("dc", "copper"):
                raise UsageError(f"--set network={value}: expected dc or copper")
            return dataclasses.replace(instance, system=s.copper_plate() if value == "copper" else s, _paths=None)
        if key in ("k", "load_scale"):
            v = coerce(value, 1.0, f"--set {key}")
            if v <= 0:
                raise UsageError(f"--set {key}={value}: expected a positive number")
            return dataclasses.replace(instance, system=dataclasses.replace(s, **{key: v}), _paths=None)
        v = coerce(value, 1, f"--set {key}")
        if v < (0 if key == "seed" else 1):
            raise UsageError(f"--set {key}={value}: expected a positive integer")
        new = dataclasses.replace(instance, **{key: v}, _paths=None)
        if key == "stages":
            new.report = min(new.report, v) if instance.report < instance.stages else v
        if new.report > new.stages:
            raise UsageError(f"--set {key}={value}: report ({new.report}) cannot exceed stages ({new.stages})")
        return new

    def evaluate(self, instance: HydroInstance, solution: Any) -> Evaluation:
        cost, viol = scenario_costs(instance, solution)
        return Evaluation(float(cost.mean()), not viol, tuple(viol))


HYDRO = register_problem(Hydro())
