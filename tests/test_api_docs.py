"""The examples in the public API's docstrings run, and give what they show; the package is marked typed."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import opsrl

MODULES = ["opsrl", "opsrl.api"]


@pytest.fixture
def one_torch_thread():
    """One torch thread, as in the neural tests (the examples decode a tiny batch)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, one_torch_thread) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see the output)"


def test_policy_solve_example_runs(one_torch_thread) -> None:
    from opsrl.routing.policy import BQPolicy

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(BQPolicy.solve, "BQPolicy.solve") if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


def test_the_package_is_typed_and_exports_the_api() -> None:
    assert (Path(opsrl.__file__).parent / "py.typed").is_file()
    for name in ("generate", "load_instance", "solve", "evaluate", "load_policy", "benchmark"):
        assert callable(getattr(opsrl, name)) and getattr(opsrl, name).__doc__
    assert "py.typed" in (Path(opsrl.__file__).parents[1] / "pyproject.toml").read_text()
