"""MILP instances: file io, references from .solu files, and evaluate's checks."""

from __future__ import annotations

import math

import pytest

import opsrl
from opsrl.core.registry import get_problem
from opsrl.milp.problem import MILPInstance

TINY = """Maximize
 obj: 3 x + 2 y + z
Subject To
 c1: x + y <= 1.5
 c2: x - z >= -1
Bounds
 0 <= z <= 2.5
Binary
 x y
End
"""


@pytest.fixture
def tiny() -> MILPInstance:
    return MILPInstance(name="tiny", text=TINY)


def test_evaluate_objective_and_feasibility(tiny):
    prob = get_problem("milp")
    ev = prob.evaluate(tiny, {"x": {"x": 1, "z": 2}})
    assert ev.feasible and ev.objective == pytest.approx(5.0)


@pytest.mark.parametrize("values,needle", [
    ({"x": 1, "y": 1}, "row c1"),
    ({"x": 0.5}, "fractional"),
    ({"z": 3}, "outside"),
    ({"w": 1}, "unknown variable"),
])
def test_evaluate_reports_violations(tiny, values, needle):
    ev = get_problem("milp").evaluate(tiny, {"x": values})
    assert not ev.feasible and any(needle in v for v in ev.violations)


def test_evaluate_rejects_malformed_solution(tiny):
    ev = get_problem("milp").evaluate(tiny, [1, 2])
    assert not ev.feasible and math.isnan(ev.objective)


def test_miplib_file_carries_its_optimum(shared_data):
    inst = opsrl.load_instance(shared_data / "miplib3" / "lseu.mps")  # problem told by the suffix
    assert inst.problem == "milp" and inst.reference.value == 1120 and inst.reference.source == "optimal"
    assert get_problem("milp").builtin("lseu").path == inst.path


def test_save_roundtrip(tmp_path, tiny):
    prob = get_problem("milp")
    for suffix in (".lp", ".mps", ".lp.gz"):
        path = tmp_path / f"tiny{suffix}"
        prob.save([tiny], path)
        back = prob.load(path)[0]
        ev = prob.evaluate(back, {"x": {"x": 1, "z": 2}})
        assert ev.feasible and ev.objective == pytest.approx(5.0)


def test_generated_default_and_override():
    prob = get_problem("milp")
    inst = opsrl.generate("milp", size=30, seed=1)
    assert inst.provenance["generator"] == "setcover"
    other = prob.override(inst, "family", "indset")
    assert other.provenance["generator"] == "indset" and other.text != inst.text
    with pytest.raises(Exception, match="family"):
        prob.override(inst, "family", "nope")


def test_cli_bad_model_file_is_one_line(cli, tmp_path):
    bad = tmp_path / "bad.lp"
    bad.write_text("this is not a model\n")
    code, _, err = cli("solve", "--problem", "milp", "--instance", bad, "--solver", "scip")
    assert code == 1 and err.count("\n") == 1 and "bad.lp" in err


def test_bad_mps_file_prints_only_our_line(capfd, tmp_path):
    """SCIP's C reader prints its own parse errors; the user sees one line from opsrl."""
    from opsrl.cli.app import main

    bad = tmp_path / "bad.mps"
    bad.write_text("garbage\n")
    with pytest.raises(SystemExit) as exc:
        main(["solve", "--problem", "milp", "--instance", str(bad), "--solver", "scip"])
    out, err = capfd.readouterr()
    assert exc.value.code == 1 and out == ""
    assert err.count("\n") == 1 and "bad.mps" in err and "reader_mps" not in err
