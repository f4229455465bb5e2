import pytest

import opsrl
from opsrl.core.errors import InfeasibleInstanceError, UsageError


def test_solve_costs_with_evaluate_and_records_schema():
    inst = opsrl.generate("kp", 12, seed=3)
    result = opsrl.solve(inst, "ortools", time_limit=5)
    assert result.feasible and str(result.status) == "optimal"
    assert result.objective == opsrl.evaluate(inst, result.solution).objective
    rec = result.record()
    for col in ("problem", "instance", "solver", "seed", "status", "objective", "bound", "reference",
                "reference_source", "gap_pct", "wall_s", "solver_s", "nodes", "peak_mem_mb", "device",
                "opsrl_version", "params"):
        assert col in rec


def test_in_process_and_isolated_runs_agree():
    inst = opsrl.generate("kp", 15, seed=1)
    a = opsrl.solve(inst, "ortools", isolate=False)
    b = opsrl.solve(inst, "ortools", isolate=True)
    assert a.objective == b.objective


def test_bad_limits_and_infeasible_instances_are_refused():
    inst = opsrl.generate("kp", 5, seed=0)
    with pytest.raises(UsageError, match="positive"):
        opsrl.solve(inst, "ortools", time_limit=-1)
    cvrp = opsrl.get_problem("cvrp").override(opsrl.generate("cvrp", 5, seed=0), "capacity", "3")
    with pytest.raises(InfeasibleInstanceError, match="above the vehicle capacity 3"):
        opsrl.solve(cvrp, "pyvrp", time_limit=1)


def test_instance_file_errors_survive_the_worker_pipe():
    import pickle

    from opsrl.core.errors import InstanceFileError

    again = pickle.loads(pickle.dumps(InstanceFileError("a.vrp", "line 3: expected a number")))
    assert isinstance(again, InstanceFileError) and str(again) == "a.vrp: line 3: expected a number"


def test_a_worker_imports_the_solvers_packages_before_its_clock_starts(tmp_path, monkeypatch):
    import sys

    from opsrl.core import registry
    from opsrl.core.types import Solution, Status

    (tmp_path / "opsrl_import_probe.py").write_text("")  # a module nothing else imports
    monkeypatch.syspath_prepend(str(tmp_path))

    def probe(instance, *, time_limit, seed):
        return Solution(Status.FEASIBLE, [], {"preloaded": "opsrl_import_probe" in sys.modules})

    registry.register_solver(["kp"], "probe-imports", "test only",
                             imports=["opsrl_import_probe", "opsrl_no_such_module"])(probe)
    try:
        inst = opsrl.generate("kp", 5, seed=0)
        assert opsrl.solve(inst, "probe-imports", time_limit=5).stats["preloaded"] is True  # a missing one is skipped
        assert opsrl.solve(inst, "probe-imports", time_limit=5, isolate=False).stats["preloaded"] is False
    finally:
        registry._SOLVERS.pop(("kp", "probe-imports"))
    assert registry.get_solver("cvrp", "ortools").imports and registry.get_solver("cvrp", "pyvrp").imports
