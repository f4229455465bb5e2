"""Label files: arrays that match the solver's solutions, resumable labelling, one-line errors on bad files."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

import opsrl
from opsrl.core import registry
from opsrl.core.errors import OpsrlError
from opsrl.core.types import Solution, Status
from opsrl.routing.labels import label_solution, load_labels, make_labels, runs_path, save_labels

# fast labellers at 0.3 s: (problem, solver, size)
CASES = [("tsp", "fasttsp", 9), ("cvrp", "hgs", 10), ("op", "pyvrp", 10), ("kp", "ortools", 10)]


def _rotate(tour: list[int]) -> list[int]:
    k = tour.index(0)
    return tour[k:] + tour[:k]


@pytest.mark.parametrize(("problem", "solver", "size"), CASES)
def test_labels_match_the_runs_and_evaluate_to_the_objective(problem, solver, size, tmp_path):
    out = make_labels(problem, size, 2, seed=4, solver=solver, time_limit=0.3, jobs=2, out=tmp_path / "l.npz",
                      progress=False)
    prob, instances, arrays = load_labels(out)
    assert prob == problem and [i.name for i in instances] == [f"{problem}{size}-s4-{k}" for k in range(2)]
    assert str(arrays["label_solver"]) == solver and float(arrays["label_time_limit"]) == 0.3
    assert arrays["objective"].dtype == np.float64 and arrays["objective"].shape == (2,)
    runs = pd.read_parquet(runs_path(out)).set_index("instance")
    for k, inst in enumerate(instances):
        sol = json.loads(runs.loc[inst.name, "solution"])
        if problem == "tsp":
            assert arrays["tour"].dtype == np.int32 and arrays["tour"].shape == (2, size)
            assert arrays["tour"][k].tolist() == _rotate(sol)
        elif problem == "cvrp":
            assert arrays["order"].dtype == np.int32 and arrays["via_depot"].dtype == np.bool_
            assert arrays["order"][k].tolist() == [v for r in sol for v in r]
            starts = np.cumsum([0, *[len(r) for r in sol[:-1]]])
            assert np.flatnonzero(arrays["via_depot"][k]).tolist() == starts.tolist()
        elif problem == "op":
            assert arrays["tour"].dtype == np.int32
            assert arrays["tour"][k].tolist() == sol + [-1] * (size - len(sol))
        else:
            assert arrays["packed"].dtype == np.bool_
            assert np.flatnonzero(arrays["packed"][k]).tolist() == sorted(sol)
        back = label_solution(problem, arrays, k)
        ev = opsrl.evaluate(inst, back)
        assert ev.feasible and ev.objective == arrays["objective"][k]
        assert math.isclose(ev.objective, runs.loc[inst.name, "objective"])
        assert inst.reference.value == arrays["objective"][k]
        assert inst.reference.source == f"label {solver} 0.3s"
    # a label file is still an instance batch
    assert len(opsrl.load_instances(out, problem)) == 2


def test_save_labels_by_hand_round_trips(tmp_path):
    tsp = [opsrl.generate("tsp", 6, seed=k) for k in range(2)]
    save_labels("tsp", tsp, [[3, 4, 5, 0, 1, 2], [0, 2, 1, 3, 5, 4]], tmp_path / "t.npz", "manual", 1)
    _, insts, arr = load_labels(tmp_path / "t.npz")
    assert arr["tour"].tolist() == [[0, 1, 2, 3, 4, 5], [0, 2, 1, 3, 5, 4]]
    assert insts[0].reference.source == "label manual 1s"

    cvrp = opsrl.generate("cvrp", 6, seed=0)
    save_labels("cvrp", [cvrp], [[[2, 3], [], [6, 1, 5], [4]]], tmp_path / "c.npz", "manual", 1)
    _, _, arr = load_labels(tmp_path / "c.npz")
    assert arr["order"].tolist() == [[2, 3, 6, 1, 5, 4]]
    assert arr["via_depot"].tolist() == [[True, False, True, False, False, True]]
    assert label_solution("cvrp", arr, 0) == [[2, 3], [6, 1, 5], [4]]

    op = opsrl.generate("op", 6, seed=0)
    save_labels("op", [op], [[]], tmp_path / "o.npz", "manual", 1)  # the empty tour is a valid label
    _, _, arr = load_labels(tmp_path / "o.npz")
    assert arr["tour"].tolist() == [[-1] * 6] and arr["objective"].tolist() == [0.0]

    kp = dataclasses.replace(opsrl.generate("kp", 6, seed=0), capacity=1500.0)
    with pytest.raises(OpsrlError, match="infeasible"):
        save_labels("kp", [kp], [list(range(6))], tmp_path / "k.npz", "manual", 1)
    assert not (tmp_path / "k.npz").exists()


def test_resume_with_a_larger_count_labels_only_the_new_instances(tmp_path):
    out = tmp_path / "tsp.npz"
    make_labels("tsp", 8, 2, seed=0, solver="fasttsp", time_limit=0.2, out=out, progress=False)
    first = pd.read_parquet(runs_path(out))
    assert len(first) == 2
    with pytest.raises(OpsrlError, match="already exists"):
        make_labels("tsp", 8, 3, seed=0, solver="fasttsp", time_limit=0.2, out=out, progress=False)
    with pytest.raises(OpsrlError, match="same solver"):
        make_labels("tsp", 8, 3, seed=0, solver="pyvrp", time_limit=0.2, out=out, resume=True, progress=False)
    make_labels("tsp", 8, 4, seed=0, solver="fasttsp", time_limit=0.2, out=out, resume=True, progress=False)
    second = pd.read_parquet(runs_path(out))
    assert len(second) == 4
    old = first.set_index("instance")["finished_at"]
    assert second.set_index("instance")["finished_at"].loc[old.index].tolist() == old.tolist()
    _, insts, arr = load_labels(out)
    assert len(insts) == 4 and arr["tour"].shape == (4, 8)


def _flaky(instance, *, time_limit, seed):
    """A fake solver: no solution for instance index 1, an infeasible one for index 2."""
    index = instance.provenance["index"]
    if index == 1:
        return Solution(Status.TIMEOUT, None)
    n = instance.num_nodes
    return Solution(Status.FEASIBLE, list(range(n - 1)) if index == 2 else list(range(n)))


def test_failed_runs_are_dropped_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry._SOLVERS, ("tsp", "flaky"), registry.SolverSpec("tsp", "flaky", _flaky, "test"))
    out = make_labels("tsp", 6, 3, seed=0, solver="flaky", time_limit=0.5, jobs=2, out=tmp_path / "f.npz",
                      progress=False)
    err = capsys.readouterr().err
    assert "2 of 3 instances" in err and len(err.strip().splitlines()) == 1
    _, insts, arr = load_labels(out)
    assert [i.name for i in insts] == ["tsp6-s0-0"] and arr["tour"].tolist() == [list(range(6))]

    never = registry.SolverSpec("tsp", "never", lambda instance, *, time_limit, seed: Solution(Status.TIMEOUT), "test")
    monkeypatch.setitem(registry._SOLVERS, ("tsp", "never"), never)
    with pytest.raises(OpsrlError, match="no instance got a feasible never solution"):
        make_labels("tsp", 6, 2, seed=1, solver="never", time_limit=0.5, out=tmp_path / "g.npz", progress=False)
    assert not (tmp_path / "g.npz").exists()


def _one_line(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    text = str(exc.value)
    assert "\n" not in text, text
    for frag in fragments:
        assert frag in text, (frag, text)


def test_corrupt_label_files_give_one_line_errors(tmp_path):
    good = tmp_path / "good.npz"
    save_labels("tsp", [opsrl.generate("tsp", 6, seed=k) for k in range(2)],
                [list(range(6)), list(range(6))], good, "manual", 1)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(OpsrlError) as exc:
        load_labels(garbage)
    _one_line(exc, str(garbage))

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(OpsrlError) as exc:
        load_labels(truncated)
    _one_line(exc, str(truncated))

    with np.load(good) as z:
        data = {k: z[k] for k in z.files}

    def tampered(name: str, **changes) -> OpsrlError:
        path = tmp_path / name
        np.savez(path, **{**{k: v for k, v in data.items() if k not in changes or changes[k] is not None},
                          **{k: v for k, v in changes.items() if v is not None}})
        with pytest.raises(OpsrlError) as exc:
            load_labels(path)
        return exc

    _one_line(tampered("dup.npz", tour=np.array([[0, 1, 1, 3, 4, 5], [0, 1, 2, 3, 4, 5]], np.int32)),
              "dup.npz", "'tour'", "row 0", "permutation")
    _one_line(tampered("shape.npz", tour=np.zeros((2, 5), np.int32)), "shape.npz", "'tour'", "(2, 6)")
    _one_line(tampered("start.npz", tour=np.array([[1, 0, 2, 3, 4, 5]] * 2, np.int32)), "'tour'", "start at node 0")
    _one_line(tampered("float.npz", tour=data["tour"].astype(float)), "'tour'", "dtype")
    _one_line(tampered("missing.npz", objective=None), "missing.npz", "'objective'")
    assert "objective" in data  # the helper leaves the good arrays alone
    _one_line(tampered("solver.npz", label_solver=np.array([1, 2])), "'label_solver'")
    with pytest.raises(OpsrlError, match="not found"):
        load_labels(tmp_path / "absent.npz")


def test_cvrp_and_op_arrays_are_checked(tmp_path):
    cvrp = tmp_path / "c.npz"
    save_labels("cvrp", [opsrl.generate("cvrp", 5, seed=0)], [[[1, 2], [3, 4, 5]]], cvrp, "manual", 1)
    with np.load(cvrp) as z:
        data = {k: z[k] for k in z.files}
    np.savez(tmp_path / "c2.npz", **{**data, "via_depot": np.zeros((1, 5), bool)})
    with pytest.raises(OpsrlError, match="'via_depot'.*start a route"):
        load_labels(tmp_path / "c2.npz")
    np.savez(tmp_path / "c3.npz", **{**data, "order": np.array([[0, 1, 2, 3, 4]], np.int32)})
    with pytest.raises(OpsrlError, match="'order'.*customers 1..N"):
        load_labels(tmp_path / "c3.npz")

    op = tmp_path / "o.npz"
    save_labels("op", [opsrl.generate("op", 5, seed=0)], [[2]], op, "manual", 1)
    with np.load(op) as z:
        data = {k: z[k] for k in z.files}
    for tour, msg in (([[2, -1, 3, -1, -1]], "after the -1 padding"), ([[2, 2, -1, -1, -1]], "more than once"),
                      ([[6, -1, -1, -1, -1]], "expected nodes 1..5")):
        np.savez(tmp_path / "o2.npz", **{**data, "tour": np.array(tour, np.int32)})
        with pytest.raises(OpsrlError, match=msg):
            load_labels(tmp_path / "o2.npz")


def test_bad_arguments(tmp_path):
    with pytest.raises(OpsrlError, match=".npz"):
        make_labels("tsp", 6, 2, seed=0, solver="fasttsp", time_limit=0.2, out=tmp_path / "l.json")
    with pytest.raises(OpsrlError, match="unknown solver"):
        make_labels("kp", 6, 2, seed=0, solver="hgs", time_limit=0.2, out=tmp_path / "l.npz")
    with pytest.raises(OpsrlError, match="count"):
        make_labels("tsp", 6, 0, seed=0, solver="fasttsp", time_limit=0.2, out=tmp_path / "l.npz")
