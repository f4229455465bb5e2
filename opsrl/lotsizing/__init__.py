"""Lot-sizing family: stochastic capacitated multi-item multi-machine lot sizing (PDPPO, PPO, MIP baselines)."""

from opsrl.lotsizing import problem as _problem  # noqa: F401  (registers the problem)
from opsrl.lotsizing import solvers as _solvers  # noqa: F401  (registers the solvers)
