"""SCIP solvers under the protocol: the same optimum whatever the branching, records complete."""

from __future__ import annotations

import pytest

import opsrl
from opsrl.core.run import run_solver

SMALL = ("egout", "misc03", "lseu")


@pytest.mark.parametrize("name", SMALL)
def test_learned_branching_finds_scips_optimum(shared_data, name):
    inst = opsrl.load_instance(shared_data / "miplib3" / f"{name}.mps")
    ref = run_solver(inst, "scip", time_limit=60, seed=0, params={"learn2branch": True}, isolate=False)
    gnn = run_solver(inst, "scip-gnn", time_limit=60, seed=0, params={"learn2branch": True}, isolate=False)
    assert str(ref.status) == str(gnn.status) == "optimal"
    assert gnn.feasible and gnn.objective == pytest.approx(ref.objective, rel=1e-9, abs=1e-6)
    assert gnn.objective == pytest.approx(inst.reference.value, rel=1e-6)
    for key in ("nodes", "bound", "gap", "solver_s", "wall_s", "primal_dual_integral", "feature_s", "inference_s"):
        assert key in gnn.stats


def test_classical_rules_agree_and_infeasible_is_reported(shared_data):
    inst = opsrl.load_instance(shared_data / "miplib3" / "egout.mps")
    values = {s: run_solver(inst, s, time_limit=60, seed=1, isolate=False).objective
              for s in ("scip-pscost", "scip-mostinf", "scip-fsb")}
    assert all(v == pytest.approx(568.1007, rel=1e-6) for v in values.values())
    inf = opsrl.load_instance(shared_data / "miplib3" / "stein27_inf.lp")
    assert str(run_solver(inf, "scip", time_limit=60, seed=0, isolate=False).status) == "infeasible"


def test_default_solver_is_learned():
    from opsrl.api import default_solver

    assert default_solver("milp") == "scip-gnn"


def test_cli_compare_prints_both(cli, shared_data):
    code, out, _ = cli("solve", "--problem", "milp", "--instance", shared_data / "miplib3" / "egout.mps",
                       "--solver", "scip-pscost", "--compare", "scip", "--time-limit", "30")
    assert code == 0 and "compare" in out
    line = next(x for x in out.splitlines() if x.startswith("nodes"))
    assert len(line.split()) == 3
