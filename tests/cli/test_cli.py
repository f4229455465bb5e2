"""The CLI end to end, through the real entry point: output, files written, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import opsrl
from opsrl.routing.formats import read_cvrp_solution

EXAMPLES = Path(__file__).resolve().parents[2] / "instances"


def assert_one_line_error(code, err, expected_code, *fragments):
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsrl: error:"), err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def test_solve_json_has_the_promised_fields(cli):
    code, out, err = cli("solve", "--problem", "kp", "--size", "30", "--seed", "2", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key in ("problem", "instance", "solver", "status", "feasible", "objective", "reference", "gap_pct",
                "wall_s", "solution"):
        assert key in data
    assert data["feasible"] and data["status"] == "optimal"
    inst = opsrl.generate("kp", 30, seed=2)
    assert opsrl.evaluate(inst, data["solution"]).objective == data["objective"]


def test_solve_cvrp_example_writes_sol_and_plot(cli, tmp_path):
    sol, png = tmp_path / "cvrp20.sol", tmp_path / "cvrp20.png"
    code, out, err = cli("solve", "--instance", EXAMPLES / "cvrp20.vrp", "--solver", "pyvrp", "--time-limit", "1",
                         "--out", sol, "--plot", png)
    assert code == 0, err
    assert "status     feasible" in out and "objective" in out
    inst = opsrl.load_instance(EXAMPLES / "cvrp20.vrp")
    assert opsrl.evaluate(inst, read_cvrp_solution(sol)).feasible
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_solve_builtin_cvrplib_reports_gap_to_best_known(cli, shared_data):
    code, out, err = cli("solve", "-p", "cvrp", "-i", "X-n101-k25", "-s", "pyvrp", "-t", "2", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["reference"] == 27591 and data["feasible"]
    assert data["gap_pct"] == pytest.approx(100 * (data["objective"] - 27591) / 27591)
    assert data["objective"] >= 27591  # no solution beats the optimum


def test_set_and_param_options(cli):
    code, out, err = cli("solve", "-p", "cvrp", "-n", "10", "--set", "capacity=15", "-s", "ortools", "-t", "1", "--json")
    assert code == 0, err
    routes = json.loads(out)["solution"]
    inst = opsrl.get_problem("cvrp").override(opsrl.generate("cvrp", 10, seed=0), "capacity", "15")
    assert all(inst.demands[r].sum() <= 15 for r in routes)
    code, _, err = cli("solve", "-p", "kp", "--param", "depth=3")
    assert_one_line_error(code, err, 2, "no option 'depth'")


def test_generate_file_folder_and_batch(cli, tmp_path):
    code, out, err = cli("generate", "-p", "cvrp", "-n", "15", "-c", "4", "--seed", "3", "--out", tmp_path / "b.npz")
    assert code == 0, err
    batch = opsrl.load_instances(tmp_path / "b.npz")
    assert len(batch) == 4 and batch[0].size == 15
    code, out, err = cli("generate", "-p", "tsp", "-n", "12", "-c", "3", "--out", tmp_path / "folder")
    assert code == 0, err
    assert len(list((tmp_path / "folder").glob("*.tsp"))) == 3
    code, _, err = cli("generate", "-p", "tsp", "-n", "12", "-c", "3", "--out", tmp_path / "one.tsp")
    assert_one_line_error(code, err, 2, ".npz batch or a folder")


def test_list_names_problems_and_solvers(cli):
    code, out, err = cli("list", "--json")
    assert code == 0, err
    data = json.loads(out)
    names = {p["problem"]: [s["name"] for s in p["solvers"]] for p in data["problems"]}
    assert {"ortools", "pyvrp"} <= set(names["cvrp"]) and "ortools" in names["kp"]


def test_bench_then_resume_then_report(cli, tmp_path):
    opsrl.save_instance(opsrl.generate("kp", 20, seed=0, count=2), tmp_path / "kp.npz")
    out = tmp_path / "res.parquet"
    code, stdout, err = cli("bench", "-p", "kp", "--instances", tmp_path / "kp.npz", "--solvers", "ortools,scip",
                            "-t", "2", "--out", out)
    assert code == 0, err
    assert len(pd.read_parquet(out)) == 4 and "ortools" in stdout
    code, _, err = cli("bench", "-p", "kp", "--instances", tmp_path / "kp.npz", "--solvers", "ortools,scip",
                       "-t", "2", "--out", out)
    assert_one_line_error(code, err, 1, "--resume")
    code, _, err = cli("bench", "-p", "kp", "--instances", tmp_path / "kp.npz", "--solvers", "ortools,scip",
                       "-t", "2", "--seeds", "2", "--out", out, "--resume")
    assert code == 0, err
    df = pd.read_parquet(out)
    assert len(df) == 8 and sorted(df.seed.unique()) == [0, 1]
    code, stdout, err = cli("report", out, "--out", tmp_path / "report")
    assert code == 0, err
    assert (tmp_path / "report" / "report.md").is_file()
    assert list((tmp_path / "report").glob("*.png"))


def test_bench_takes_several_instance_paths_after_one_flag(cli, tmp_path):
    for k in range(2):
        opsrl.save_instance(opsrl.generate("kp", 10, seed=k), tmp_path / f"k{k}.json")
    code, _, err = cli("bench", "-p", "kp", "--instances", tmp_path / "k0.json", tmp_path / "k1.json",
                       "--solvers", "ortools", "-t", "1", "--out", tmp_path / "r.parquet")
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 2


def test_bad_input_gets_one_line_and_the_right_exit_code(cli, tmp_path):
    code, _, err = cli("solve", "-p", "nosuch")
    assert_one_line_error(code, err, 2, "unknown problem 'nosuch'", "cvrp")
    code, _, err = cli("solve", "-p", "cvrp", "-s", "nosuch")
    assert_one_line_error(code, err, 2, "unknown solver 'nosuch' for problem cvrp")
    code, _, err = cli("solve", "-p", "kp", "-s", "pyvrp")
    assert_one_line_error(code, err, 2, "unknown solver 'pyvrp' for problem kp", "it solves")
    code, _, err = cli("solve", "-p", "kp", "-t", "-1")
    assert_one_line_error(code, err, 2, "--time-limit must be a positive")
    code, _, err = cli("solve", "-p", "kp", "--frobnicate")
    assert_one_line_error(code, err, 2, "--frobnicate")
    bad = tmp_path / "bad.vrp"
    bad.write_text("NAME: bad\nTYPE: CVRP\nDIMENSION: 3\nCAPACITY: 10\nEDGE_WEIGHT_TYPE: EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1\n")
    code, _, err = cli("solve", "-i", bad)
    assert_one_line_error(code, err, 1, str(bad), "line 8", "expected 3")
    code, _, err = cli("solve", "-p", "cvrp", "-i", tmp_path / "missing.vrp")
    assert_one_line_error(code, err, 1, "missing.vrp")
    code, _, err = cli("solve", "-p", "cvrp", "-n", "10", "--set", "capacity=3")
    assert_one_line_error(code, err, 1, "above the vehicle capacity 3")
    code, _, err = cli("solve", "-p", "cvrp", "-n", "10", "--set", "colour=red")
    assert_one_line_error(code, err, 2, "no field 'colour'")
    code, _, err = cli("report", tmp_path / "missing.parquet", "--out", tmp_path / "r")
    assert_one_line_error(code, err, 1, "missing.parquet")


def test_help_is_fast_path_and_classical_solve_never_imports_torch():
    script = ("import sys, opsrl, opsrl.cli.app\n"
              "r = opsrl.solve(opsrl.generate('cvrp', 10, seed=0), 'pyvrp', time_limit=0.5)\n"
              "assert r.feasible\n"
              "print('torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
    res = subprocess.run([sys.executable, "-m", "opsrl", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "solve" in res.stdout and "bench" in res.stdout


def test_solve_with_the_shipped_cvrp_policy_compares_it_with_pyvrp(cli):
    from opsrl.weights import shipped

    if not shipped("bq_cvrp").is_file():
        pytest.skip("no shipped cvrp checkpoint in opsrl/weights")
    code, out, _ = cli("solve", "--problem", "cvrp", "--size", "12", "--time-limit", "1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["solver"] == "bq+ls" and data["feasible"]
    assert data["compare"]["solver"] == "pyvrp" and data["compare"]["feasible"]
    code, out, _ = cli("solve", "--problem", "cvrp", "--size", "12", "--time-limit", "1", "--compare", "none", "--json")
    assert code == 0 and "compare" not in json.loads(out)


def test_milp_files_are_recognised_without_problem(cli, tmp_path):
    code, _, _ = cli("generate", "--problem", "milp", "--size", "60", "--count", "2", "--out", tmp_path / "sc")
    assert code == 0
    files = sorted((tmp_path / "sc").glob("*.mps"))
    assert len(files) == 2
    code, out, err = cli("solve", "--instance", files[0], "--solver", "scip", "--time-limit", "20")
    assert code == 0, err
    assert "milp" in out and "optimal" in out
