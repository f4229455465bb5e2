import pytest

import opsrl
from opsrl.core.errors import UsageError
from opsrl.core.registry import coerce, get_problem, get_solver, parse_assignments


def test_every_routing_problem_is_registered_with_solvers():
    assert {"tsp", "cvrp", "op", "kp"} <= set(opsrl.list_problems())
    for name in ("tsp", "cvrp", "op", "kp"):
        prob = get_problem(name)
        assert prob.sense in ("min", "max")
        assert prob.default_solver in opsrl.list_solvers(name)


def test_unknown_names_are_usage_errors_naming_the_choices():
    with pytest.raises(UsageError, match="unknown problem 'foo'.*cvrp"):
        get_problem("foo")
    with pytest.raises(UsageError, match="unknown solver 'nope' for problem cvrp"):
        get_solver("cvrp", "nope")


def test_param_checking_and_coercion():
    spec = get_solver("kp", "ortools")
    with pytest.raises(UsageError, match="has no option 'depth'"):
        spec.check_params({"depth": "3"})
    assert coerce("3", 1, "x") == 3 and coerce("0.5", 1.0, "x") == 0.5 and coerce("true", False, "x") is True
    assert coerce("7", None, "x") == 7 and coerce("abc", None, "x") == "abc"
    with pytest.raises(UsageError, match="expected a int"):
        coerce("abc", 1, "--param k")
    assert parse_assignments(["a=1", "b = x"], "--set") == {"a": "1", "b": "x"}
    with pytest.raises(UsageError, match="expected key=value"):
        parse_assignments(["oops"], "--set")
