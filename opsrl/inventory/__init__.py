"""Inventory family: networks of stores and warehouses, HDPO policies and classical baselines (torch loaded lazily)."""

from opsrl.inventory import problem as _problem  # noqa: F401  (registers the problem)
from opsrl.inventory import solvers as _solvers  # noqa: F401  (registers the solvers)
