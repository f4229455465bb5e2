"""Named, versioned MILP instance distributions (after Distributional MIPLIB): generator + parameters +
seeds with train / validation / test splits, a hardness label from SCIP default's solve time, user
folders of .mps/.lp files, and mixes of distributions.

``setcover-easy`` ... ``indset-hard`` are the four Gasse generators at the three Gasse sizes;
``mix`` is the four easy ones; ``mix:a,b`` any mix; ``folder:PATH`` (or a folder path) a user set.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsrl.core.errors import OpsrlError, UsageError
from opsrl.milp.generators import SIZES, write_instance
from opsrl.milp.problem import PROBLEM, SUFFIXES, MILPInstance, model_suffix

SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_SIZES = {"train": 800, "val": 100, "test": 100}
HARDNESS = (100.0, 1000.0)  # easy below, medium between, hard beyond (seconds of SCIP default)


def data_root() -> Path:
    """Where generated instances and samples live: ``$OPSRL_MILP_DATA`` or ``data/milp`` of the checkout."""
    env = os.environ.get("OPSRL_MILP_DATA")
    if env:
        return Path(env)
    from opsrl.core.data import PROJECT_ROOT

    return PROJECT_ROOT / "data" / "milp"


@dataclass(frozen=True)
class Distribution:
    """A generator with fixed parameters and seed: instance ``i`` of a split is always the same model."""

    name: str
    family: str
    params: dict[str, Any]
    seed: int = 0
    version: int = 1
    split_sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SPLIT_SIZES))

    @property
    def key(self) -> str:
        return f"{self.name}-v{self.version}"

    def index(self, split: str, i: int) -> int:
        """The generator stream index of instance ``i`` of ``split`` (splits never overlap)."""
        if split not in SPLITS:
            raise UsageError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        if not 0 <= i < self.split_sizes[split]:
            raise UsageError(f"{self.name} {split} has {self.split_sizes[split]} instances, asked for #{i}")
        offset = sum(self.split_sizes[s] for s in SPLITS[: SPLITS.index(split)])
        return offset + i

    def path(self, split: str, i: int) -> Path:
        return data_root() / "instances" / self.key / split / f"{self.name}-{split}-{i:04d}.lp"

    def instance(self, split: str, i: int) -> MILPInstance:
        """Instance ``i`` of ``split``, written to disk the first time it is asked for."""
        path = self.path(split, i)
        if not path.is_file():
            tmp = path.with_name(path.name + f".{os.getpid()}.partial.lp")
            write_instance(self.family, tmp, self.seed, self.index(split, i), **self.params)
            tmp.replace(path)
        inst = PROBLEM.load(path)[0]
        return MILPInstance(name=inst.name, path=inst.path, reference=None,
                            provenance={"distribution": self.key, "split": split, "index": i,
                                        "generator": self.family, "params": self.params, "seed": self.seed})

    def instances(self, split: str, count: int | None = None) -> list[MILPInstance]:
        n = self.split_sizes[split] if count is None else min(count, self.split_sizes[split])
        return [self.instance(split, i) for i in range(n)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "family": self.family, "params": self.params,
                "seed": self.seed, "splits": self.split_sizes}


@dataclass(frozen=True)
class FolderDistribution:
    """Every .mps/.lp(.gz) file of a user folder, split 80/10/10 by a hash of the file name."""

    folder: Path

    @property
    def name(self) -> str:
        return f"folder:{self.folder}"

    @property
    def key(self) -> str:
        return "folder-" + hashlib.sha1(str(self.folder.resolve()).encode()).hexdigest()[:10]

    def files(self, split: str) -> list[Path]:
        if not self.folder.is_dir():
            raise OpsrlError(f"{self.folder}: no such folder of .mps/.lp files")
        files = sorted(p for p in self.folder.iterdir() if p.is_file() and model_suffix(p))
        if not files:
            raise OpsrlError(f"{self.folder}: holds no model files ({', '.join(SUFFIXES)})")
        if len(files) < 10:  # too few to split: every split is the whole folder
            return files
        def bucket(p: Path) -> str:
            h = int(hashlib.sha1(p.name.encode()).hexdigest(), 16) % 10
            return "train" if h < 8 else "val" if h == 8 else "test"
        return [p for p in files if bucket(p) == split]

    def instances(self, split: str, count: int | None = None) -> list[MILPInstance]:
        files = self.files(split)[:count] if count is not None else self.files(split)
        return [PROBLEM.load(p)[0] for p in files]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder)}


@dataclass(frozen=True)
class Mix:
    """A training set drawing from several distributions in turn."""

    members: tuple[Any, ...]
    name: str = "mix"

    @property
    def key(self) -> str:
        return self.name.replace(":", "-").replace(",", "+")

    def instances(self, split: str, count: int | None = None) -> list[MILPInstance]:
        """``count`` instances taken round-robin from the members (each member's own order)."""
        per = None if count is None else -(-count // len(self.members))
        lists = [m.instances(split, per) for m in self.members]
        out = [inst for group in zip(*lists) for inst in group]
        return out if count is None else out[:count]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "members": [m.describe() for m in self.members]}


def instance_at(dist: Any, split: str, i: int) -> MILPInstance:
    """Instance ``i`` of a split, cycling (a mix takes its members in turn); generated only when asked for."""
    if isinstance(dist, Mix):
        k = len(dist.members)
        return instance_at(dist.members[i % k], split, i // k)
    if isinstance(dist, FolderDistribution):
        files = dist.files(split)
        return PROBLEM.load(files[i % len(files)])[0]
    return dist.instance(split, i % dist.split_sizes[split])


def catalogue() -> dict[str, Distribution]:
    """The built-in distributions: every Gasse generator at every Gasse size."""
    return {f"{fam}-{level}": Distribution(f"{fam}-{level}", fam, dict(params))
            for fam, levels in SIZES.items() for level, params in levels.items()}


def resolve(name: str) -> Distribution | FolderDistribution | Mix:
    """A distribution by name: a catalogue name, ``mix``, ``mix:a,b``, ``folder:PATH`` or a folder path."""
    cat = catalogue()
    if name in cat:
        return cat[name]
    if name == "mix":
        return Mix(tuple(cat[f"{f}-easy"] for f in SIZES), name="mix")
    if name.startswith("mix:"):
        return Mix(tuple(resolve(part) for part in name[4:].split(",") if part), name=name)
    if name.startswith("folder:") or Path(name).is_dir():
        return FolderDistribution(Path(name.removeprefix("folder:")))
    raise UsageError(f"unknown milp distribution {name!r}: expected one of {', '.join(cat)}, mix, mix:A,B or "
                     "folder:PATH")


def hardness(seconds: float, solved: bool, thresholds: tuple[float, float] = HARDNESS) -> str:
    """Distributional MIPLIB's label from SCIP default's solve time: easy, medium, hard."""
    if solved and seconds < thresholds[0]:
        return "easy"
    if solved and seconds < thresholds[1]:
        return "medium"
    return "hard"


def label_hardness(dist: Any, split: str = "test", count: int = 5, time_limit: float = 1000.0, seed: int = 0,
                   thresholds: tuple[float, float] = HARDNESS) -> dict[str, Any]:
    """Solve ``count`` instances of ``dist`` with SCIP default, label each, and the distribution by its median."""
    import statistics

    from opsrl.core.run import run_solver

    times, labels = [], {}
    for inst in dist.instances(split, count):
        res = run_solver(inst, "scip", time_limit=time_limit, seed=seed)
        solved = str(res.status) in ("optimal", "infeasible")
        seconds = float(res.stats.get("solver_s", res.wall_s)) if solved else float("inf")
        times.append(seconds)
        labels[inst.name] = {"seconds": seconds, "label": hardness(seconds, solved, thresholds)}
    median = statistics.median(times)
    out = {"distribution": dist.describe(), "thresholds": list(thresholds), "time_limit": time_limit,
           "instances": labels, "median_s": median,
           "label": hardness(median, median != float("inf"), thresholds)}
    target = data_root() / "labels" / f"{dist.key}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2))
    return out
