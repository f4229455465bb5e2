"""The scripts under examples/ run end to end at tiny sizes and write what they say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

import opsrl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_plans(out: Path, days: int, regions: int) -> pd.DataFrame:
    plans, routes = pd.read_csv(out / "plans.csv"), pd.read_csv(out / "routes.csv")
    assert len(plans) == days * regions and (plans["distance"] > 0).all()
    assert plans.groupby("day")["region"].nunique().eq(regions).all()
    for (day, region), part in routes.groupby(["day", "region"]):
        served = sorted(c for stops in part["stops"] for c in json.loads(stops))
        orders = int(plans[(plans["day"] == day) & (plans["region"] == region)]["orders"].iloc[0])
        assert served == list(range(1, orders + 1))  # every order of the day served exactly once
    return plans


def test_cvrp_planning_loop_falls_back_to_pyvrp_without_a_policy(tmp_path, monkeypatch) -> None:
    loop = _load("cvrp_planning_loop")
    if (Path(opsrl.__file__).parent / "weights" / "bq_cvrp.safetensors").is_file():  # once one is shipped
        monkeypatch.setattr(loop, "planner", lambda checkpoint, device: ("pyvrp", None))
    plans = loop.main(["--days", "2", "--regions", "2", "--orders", "6", "--time-limit", "0.3",
                       "--out", str(tmp_path)])
    assert set(plans["planner"]) == {"pyvrp"}
    _check_plans(tmp_path, 2, 2)


def test_cvrp_planning_loop_plans_a_batch_with_a_given_policy(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from opsrl.core.checkpoint import save_checkpoint
    from opsrl.routing.policy import BQPolicy, PolicyConfig

    torch.manual_seed(0)
    config = PolicyConfig.preset("cvrp", "tiny")
    save_checkpoint(tmp_path / "cvrp.safetensors", BQPolicy(config).state_dict(),
                    {"kind": "bq", "problem": "cvrp", "architecture": config.to_dict()})
    loop = _load("cvrp_planning_loop")
    plans = loop.main(["--days", "2", "--regions", "3", "--orders", "8", "--checkpoint",
                       str(tmp_path / "cvrp.safetensors"), "--out", str(tmp_path / "plans")])
    assert set(plans["planner"]) == {"bq"}
    _check_plans(tmp_path / "plans", 2, 3)


def test_learned_branching_plugs_into_a_users_pyscipopt_model():
    out = _load("milp_custom_branching").main(["--rows", "250", "--cols", "500", "--time-limit", "60"])
    assert out["scip"]["status"] == out["learned"]["status"] == "optimal"
    assert out["learned"]["objective"] == pytest.approx(out["scip"]["objective"])
    assert out["learned"]["branch_calls"] > 0  # the learned rule chose the branching variable
