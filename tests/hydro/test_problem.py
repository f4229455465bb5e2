"""Hydro systems: loaders, overrides, evaluate's checks, and the CLI path of every solver."""

import json

import numpy as np
import pytest

from opsrl.core.errors import InstanceFileError, OpsrlError, UsageError
from opsrl.hydro.problem import HYDRO, HydroInstance, builtin_instance, decisions, synthetic_system
from opsrl.hydro.solvers import solve_myopic, solve_pi_lp, solve_sddp


def small() -> HydroInstance:
    return HydroInstance("small", synthetic_system(2), stages=8, report=6, scenarios=6)


def test_case_folders_load_with_their_cascades(shared_data):
    bol = builtin_instance("bolivia").system
    assert (bol.n_hydro, bol.n_thermal, bol.n_bus, len(bol.line_from)) == (11, 23, 28, 31)
    names = bol.hydro_names
    links = {names[i]: names[j] for i, j in enumerate(bol.down_turn) if j >= 0}
    assert links == {"COR": "SIS", "ZON": "CHU", "TAQ1": "TAQ2"}
    assert {names[i]: names[j] for i, j in enumerate(bol.down_spill) if j >= 0} == {"ZON": "CHU", "TAQ1": "TAQ2"}
    assert bol.inflow_support.shape == (48, 15, 11)
    assert bol.k == pytest.approx(0.0036 * 168) and bol.deficit_cost == 6000
    assert np.all(bol.v0 == 0)
    c3 = builtin_instance("case3").system
    assert c3.inflow_support[:, :, 0][0].tolist() == [120, 80, 40]
    assert c3.inflow_prob[0].tolist() == [0.3, 0.4, 0.3]


def test_json_round_trip_keeps_the_system(tmp_path):
    inst = small()
    path = tmp_path / "sys.json"
    HYDRO.save([inst], path)
    back = HYDRO.load(path)[0]
    assert back.system.fingerprint() == inst.system.fingerprint()
    assert (back.stages, back.report, back.scenarios) == (8, 6, 6)
    np.testing.assert_array_equal(back.test_paths(), inst.test_paths())


def test_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "opsrl-hydro-1", "system": {"name": "x"}}))
    with pytest.raises(InstanceFileError, match="system field 'hydro_names' is missing"):
        HYDRO.load(bad)
    with pytest.raises(InstanceFileError, match="not a hydro case folder"):
        HYDRO.load(tmp_path)


def test_overrides():
    inst = small()
    assert HYDRO.override(inst, "scenarios", "3").test_paths().shape == (3, 8, 4)
    assert HYDRO.override(inst, "stages", "5").report == 5
    with pytest.raises(UsageError, match="no field 'foo'"):
        HYDRO.override(inst, "foo", "1")
    with pytest.raises(UsageError, match="cannot exceed"):
        HYDRO.override(inst, "report", "9")


def test_evaluate_recomputes_cost_and_catches_violations():
    inst = small()
    sol = solve_myopic(inst, time_limit=10, seed=0)
    ev = HYDRO.evaluate(inst, sol.data)
    assert ev.feasible and ev.objective == pytest.approx(sol.stats["own_mean_cost"], rel=1e-5)
    # spill far more than the reservoir holds: the water balance drives it below its minimum
    dec = {k: np.frombuffer(__import__("base64").b64decode(v["f32"]), "<f4").reshape(v["shape"]).astype(float)
           for k, v in sol.data.items()}
    spill = dec["s"].copy()
    spill[:, :, 0] += 10 * inst.system.vmax[0]
    ev = HYDRO.evaluate(inst, decisions(dec["q"], spill, dec["g"], dec["d"]))
    assert not ev.feasible and "below its minimum volume" in ev.violations[0]
    # more thermal output than the load needs: the power balance breaks
    ev = HYDRO.evaluate(inst, decisions(dec["q"], dec["s"], dec["g"] + 0.01, dec["d"]))
    assert not ev.feasible and "does not meet load" in ev.violations[0]
    with pytest.raises(OpsrlError, match="shape"):
        HYDRO.evaluate(inst, decisions(dec["q"][:2], dec["s"], dec["g"], dec["d"]))


def test_policies_are_ordered_pi_below_sddp_below_myopic(shared_data):
    inst = HYDRO.override(builtin_instance("case3"), "scenarios", "30")
    cost = {f.__name__: HYDRO.evaluate(inst, f(inst, time_limit=30, seed=0).data) for f in
            (solve_myopic, solve_pi_lp, solve_sddp)}
    assert all(e.feasible for e in cost.values())
    assert cost["solve_pi_lp"].objective <= cost["solve_sddp"].objective + 1e-6
    assert cost["solve_sddp"].objective < 0.9 * cost["solve_myopic"].objective


def test_cli_solve_prints_the_objective(cli, shared_data):
    code, out, err = cli("solve", "--problem", "hydro", "--instance", "case3", "--solver", "myopic",
                         "--set", "scenarios=5", "--json")
    assert code == 0, err
    assert json.loads(out)["objective"] > 0


def test_cli_errors_are_one_line(cli, tmp_path):
    code, out, err = cli("solve", "--problem", "hydro", "--instance", str(tmp_path), "--solver", "myopic")
    assert code == 1 and "not a hydro case folder" in err and "Traceback" not in err
    code, out, err = cli("solve", "--problem", "hydro", "--instance", "synthetic", "--set", "stages=0")
    assert code == 2 and "positive integer" in err
