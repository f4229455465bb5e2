"""Routing solvers, registered by name on import. Each module imports its library lazily."""

from opsrl.routing.solvers import ortools_solvers  # noqa: F401
