"""Routing instances: immutable dataclasses of numpy arrays with a name, a reference and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from opsrl.core.types import Reference
from opsrl.routing.distances import distance_matrix, is_integral


def _frozen_array(a: Any, dtype: Any = float) -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False, kw_only=True)
class RoutingInstance:
    """Shared by the graph problems: coordinates (node 0 is the depot where there is one) and distances."""

    problem: ClassVar[str] = ""
    coords: np.ndarray
    name: str = ""
    edge_weight_type: str = "EXACT"
    explicit: np.ndarray | None = None  # full matrix for EDGE_WEIGHT_TYPE EXPLICIT
    reference: Reference | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "coords", _frozen_array(self.coords).reshape(-1, 2))
        if self.explicit is not None:
            object.__setattr__(self, "explicit", _frozen_array(self.explicit))

    @property
    def num_nodes(self) -> int:
        return len(self.coords) if self.explicit is None else len(self.explicit)

    @cached_property
    def distances(self) -> np.ndarray:
        """The distance matrix under the instance's own convention (nint for TSPLIB EUC_2D files)."""
        if self.edge_weight_type == "EXPLICIT":
            return self.explicit
        d = distance_matrix(self.coords, self.edge_weight_type)
        d.setflags(write=False)
        return d

    @property
    def integral(self) -> bool:
        """Whether the distances are whole numbers as given (solvers need not scale them)."""
        if self.edge_weight_type == "EXPLICIT":
            return bool(np.all(np.mod(self.explicit, 1) == 0))
        return is_integral(self.edge_weight_type)


@dataclass(frozen=True, eq=False, kw_only=True)
class TSPInstance(RoutingInstance):
    """Travelling salesman: visit every node once and return; a solution is a permutation of 0..n-1."""

    problem: ClassVar[str] = "tsp"

    @property
    def size(self) -> int:
        return self.num_nodes


@dataclass(frozen=True, eq=False, kw_only=True)
class CVRPInstance(RoutingInstance):
    """Capacitated VRP: node 0 is the depot; a solution is a list of routes of customers 1..n."""

    problem: ClassVar[str] = "cvrp"
    demands: np.ndarray
    capacity: float

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "demands", _frozen_array(self.demands))

    @property
    def size(self) -> int:
        return self.num_nodes - 1


@dataclass(frozen=True, eq=False, kw_only=True)
class OPInstance(RoutingInstance):
    """Orienteering: a tour from the depot (node 0) of length at most ``max_length`` collecting prizes."""

    problem: ClassVar[str] = "op"
    prizes: np.ndarray
    max_length: float

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "prizes", _frozen_array(self.prizes))

    @property
    def size(self) -> int:
        return self.num_nodes - 1


@dataclass(frozen=True, eq=False, kw_only=True)
class KPInstance:
    """0-1 knapsack: a solution is the list of packed item indices 0..n-1."""

    problem: ClassVar[str] = "kp"
    values: np.ndarray
    weights: np.ndarray
    capacity: float
    name: str = ""
    reference: Reference | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen_array(self.values))
        object.__setattr__(self, "weights", _frozen_array(self.weights))

    @property
    def size(self) -> int:
        return len(self.values)
