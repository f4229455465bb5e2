"""The results parquet: one row per instance x solver x seed, provenance in the schema metadata.

Writes go through a temporary file and an atomic rename, so a reader (or an interrupted
benchmark) sees the previous complete file or the new one, never half of one.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from opsrl.core.errors import OpsrlError

META_KEY = b"opsrl"
KEY_COLUMNS = ("instance", "solver", "seed")
LIBRARIES = ("numpy", "pandas", "pyarrow", "ortools", "pyvrp", "pyscipopt", "hygese", "elkai", "torch",
             "torch_geometric")


def _git_commit() -> str | None:
    """The project's git commit (with ``-dirty`` when there are local changes), None outside a checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance(**settings: Any) -> dict[str, Any]:
    """Where and with what a benchmark ran: versions (read from package metadata, nothing imported), machine, time."""
    from opsrl import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "opsrl_version": __version__, "git_commit": _git_commit(), "python": platform.python_version(),
        "libraries": {name: v for name in LIBRARIES if (v := _version(name)) is not None},
        "hostname": socket.gethostname(), "platform": platform.platform(), "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(), "cpus_usable": usable, "argv": sys.argv,
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **settings,
    }


def write_results(df: pd.DataFrame, path: Path, meta: dict[str, Any]) -> None:
    """Write the rows and ``meta`` (JSON in the schema metadata) to ``path`` atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(meta, default=str).encode()})
    tmp = path.with_name(path.name + ".partial")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_results(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of a results file and its provenance; a missing or unreadable file is a one-line OpsrlError."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise OpsrlError(f"{path}: no such results file")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged or foreign file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OpsrlError(f"{path}: not a readable parquet results file ({reason})") from None
    missing = [c for c in (*KEY_COLUMNS, "problem", "status") if c not in table.column_names]
    if missing:
        raise OpsrlError(f"{path}: not an opsrl results file (no column {', '.join(missing)})")
    raw = (table.schema.metadata or {}).get(META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        meta = {}
    return table.to_pandas(), meta
