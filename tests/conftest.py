"""Shared fixtures: the benchmark data folder (skipped with a reason when absent) and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsrl.core.data import data_dir


@pytest.fixture
def shared_data() -> Path:
    root = data_dir()
    if root is None:
        pytest.skip("benchmark data not found: set OPSRL_DATA or put it at ../shared/data")
    return root


@pytest.fixture
def cli(capsys):
    """Run ``opsrl ARGS`` in-process through the real entry point; returns (exit code, stdout, stderr)."""
    from opsrl.cli.app import main

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out = capsys.readouterr()
        return exc.value.code, out.out, out.err

    return run
