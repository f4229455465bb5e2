"""Routing solvers, registered by name on import. Each module imports its library lazily."""

from opsrl.routing.solvers import fasttsp, hgs, lkh, neural, ortools_solvers, pyvrp_solver, scip_exact  # noqa: F401
