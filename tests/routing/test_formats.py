"""File formats round-trip, best-known values are found, and bad files get one clear line."""

import numpy as np
import pytest

import opsrl
from opsrl.core.errors import InstanceFileError, OpsrlError
from opsrl.routing.formats import read_cvrp_solution


@pytest.mark.parametrize("problem,suffix", [("tsp", ".tsp"), ("cvrp", ".vrp"), ("op", ".json"), ("kp", ".json"),
                                            ("tsp", ".json"), ("cvrp", ".json")])
def test_single_instance_round_trip(tmp_path, problem, suffix):
    inst = opsrl.generate(problem, 12, seed=5)
    path = tmp_path / f"x{suffix}"
    opsrl.save_instance(inst, path)
    back = opsrl.load_instance(path, problem)
    for field in ("coords", "demands", "prizes", "values", "weights"):
        if hasattr(inst, field):
            assert np.array_equal(getattr(inst, field), getattr(back, field)), field
    for field in ("capacity", "max_length", "edge_weight_type"):
        if hasattr(inst, field):
            assert getattr(inst, field) == getattr(back, field)
    solution = opsrl.solve(inst, time_limit=1).solution
    assert opsrl.evaluate(back, solution).objective == pytest.approx(opsrl.evaluate(inst, solution).objective)


@pytest.mark.parametrize("problem", ["tsp", "cvrp", "op", "kp"])
def test_npz_batch_round_trip(tmp_path, problem):
    insts = opsrl.generate(problem, 8, seed=1, count=5)
    path = tmp_path / "batch.npz"
    opsrl.save_instance(insts, path)
    back = opsrl.load_instances(path)
    assert [i.name for i in back] == [i.name for i in insts]
    field = "values" if problem == "kp" else "coords"
    assert all(np.array_equal(getattr(a, field), getattr(b, field)) for a, b in zip(insts, back))


def test_cvrplib_best_known_is_reproduced_by_evaluate(shared_data):
    path = shared_data / "cvrplib-x" / "X-n101-k25.vrp"
    inst = opsrl.load_instance(path)
    assert inst.reference.value == 27591 and inst.edge_weight_type == "EUC_2D"
    routes = read_cvrp_solution(path.with_suffix(".sol"))
    ev = opsrl.evaluate(inst, routes)
    assert ev.feasible and ev.objective == 27591


def test_tsplib_reference_from_solutions_list(shared_data):
    inst = opsrl.load_instance("berlin52", "tsp")
    assert inst.reference.value == 7542 and "solutions" in inst.reference.source
    assert inst.distances[0, 1] == np.floor(np.hypot(565 - 25, 575 - 185) + 0.5)  # nint, as TSPLIB


def test_cvrp_solution_file_round_trip(tmp_path):
    inst = opsrl.generate("cvrp", 10, seed=0)
    routes = [[1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    cost = opsrl.evaluate(inst, routes).objective
    opsrl.get_problem("cvrp").save_solution(inst, routes, cost, tmp_path / "x.sol")
    assert read_cvrp_solution(tmp_path / "x.sol") == routes
    assert f"Cost {round(cost, 6)}" in (tmp_path / "x.sol").read_text()


BAD_FILES = {
    "truncated": ("NAME: t\nTYPE: CVRP\nDIMENSION: 4\nEDGE_WEIGHT_TYPE: EUC_2D\nCAPACITY: 10\nNODE_COORD_SECTION\n"
                  "1 0 0\n2 1 1\n3 2\n", "line 9: NODE_COORD_SECTION entry '3 2' has 2 fields"),
    "short": ("NAME: t\nTYPE: CVRP\nDIMENSION: 4\nEDGE_WEIGHT_TYPE: EUC_2D\nCAPACITY: 10\nNODE_COORD_SECTION\n"
              "1 0 0\n2 1 1\nDEMAND_SECTION\n1 0\n2 3\nDEPOT_SECTION\n1\n-1\nEOF\n", "DIMENSION is 4 but NODE_COORD_SECTION has 2"),
    "nocap": ("NAME: t\nTYPE: CVRP\nDIMENSION: 2\nEDGE_WEIGHT_TYPE: EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n"
              "DEMAND_SECTION\n1 0\n2 3\nEOF\n", "missing CAPACITY"),
    "garbage": ("this is not an instance\n", "not a 'KEY : value' header line"),
    "wrongtype": ("NAME: t\nTYPE: TSP\nDIMENSION: 2\nEDGE_WEIGHT_TYPE: EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nEOF\n",
                  "TYPE is TSP, expected CVRP"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_vrp_files_get_one_clear_line(tmp_path, case):
    text, message = BAD_FILES[case]
    path = tmp_path / f"{case}.vrp"
    path.write_text(text)
    with pytest.raises(InstanceFileError) as exc:
        opsrl.load_instance(path, "cvrp")
    assert message in str(exc.value) and str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_malformed_json_files(tmp_path):
    (tmp_path / "a.json").write_text('{"problem": "op", "coords": [[0, 0], [1, 1]], "prizes": [0]}')
    with pytest.raises(InstanceFileError, match="missing field 'max_length'"):
        opsrl.load_instance(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"problem": "op", "coords": [[0, 0], [1, 1]], "prizes": [0], "max_length": 2}')
    with pytest.raises(InstanceFileError, match="'prizes' has 1 entries, expected 2"):
        opsrl.load_instance(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"problem": "kp", "values": [1, 2')
    with pytest.raises(InstanceFileError, match="not valid JSON"):
        opsrl.load_instance(tmp_path / "c.json")
    with pytest.raises(OpsrlError, match="no such file"):
        opsrl.load_instance(tmp_path / "missing.vrp", "cvrp")
