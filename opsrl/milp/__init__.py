"""The milp family: MILP instance distributions and learned variable branching inside SCIP."""

from opsrl.milp import problem, solvers  # noqa: F401  (registers the problem and its solvers)
