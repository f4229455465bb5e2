"""Fixtures of the milp tests: a private data folder for generated instances and samples."""

from __future__ import annotations

import pytest


@pytest.fixture
def milp_data(tmp_path, monkeypatch):
    """Point generated instances and samples at a temporary folder."""
    monkeypatch.setenv("OPSRL_MILP_DATA", str(tmp_path / "milp"))
    return tmp_path / "milp"
