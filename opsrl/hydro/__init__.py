"""Hydro family: long-term hydrothermal dispatch with stage LPs, SDDP and TS-DDR decision rules."""

from opsrl.hydro import problem as _problem  # noqa: F401  (registers the problem)
from opsrl.hydro import solvers as _solvers  # noqa: F401  (registers the solvers)
