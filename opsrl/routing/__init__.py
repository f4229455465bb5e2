"""Routing family: tsp, cvrp, op, kp with classical solvers (and BQ-NCO policies)."""

from opsrl.routing import problem as _problem  # noqa: F401  (registers the problems)
from opsrl.routing import solvers as _solvers  # noqa: F401  (registers the solvers)
