"""The bipartite variable-constraint state of a SCIP node, normalised as Gasse et al. (2019).

Built on ``Model.getBipartiteGraphRepresentation``. Only the edge features (and the static row data
that goes with them: sides, norms) are cached between nodes, because PySCIPOpt 6.3's column and row
caching keeps stale values; the cache is dropped whenever the LP's row count or nonzero count changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

N_VAR_FEATS = 19
N_CONS_FEATS = 5
N_EDGE_FEATS = 1
N_NODE_FEATS = 5  # per-candidate node features of the hybrid (CPU) policy
# their columns, in the order node_features writes them
NODE_COLUMNS = {"frac": 0, "dist_to_int": 1, "lp_value": 2, "pscost_rel": 3, "pscost_log": 4}

# column feature positions in PySCIPOpt's representation
_C = {"obj_coef": 4, "sol_val": 9, "red_cost": 11, "age": 18}
# row feature positions
_R = {"has_lhs": 0, "has_rhs": 1, "nnz": 2, "obj_cosine": 3, "bias": 4, "norm": 5, "at_lhs": 6, "at_rhs": 7,
      "dual": 8, "age": 9}


@dataclass
class Graph:
    """One node's bipartite state: constraint, edge and variable features, edges as (constraint, variable)."""

    cons: np.ndarray  # [n_cons, 5] float32 (LP rows split by finite side)
    edge_index: np.ndarray  # [2, n_edges] int64: constraint index, variable (LP column) index
    edge_attr: np.ndarray  # [n_edges, 1] float32
    var: np.ndarray  # [n_vars, 19] float32

    def arrays(self) -> dict[str, np.ndarray]:
        return {"cons": self.cons, "edge_index": self.edge_index, "edge_attr": self.edge_attr, "var": self.var}


class _EdgeCache:
    def __init__(self, edges: np.ndarray, sides: np.ndarray, n_rows: int):
        self.edges = edges  # [nnz, 3]: col, row, coef
        self.sides = sides  # [n_rows, 3]: lhs, rhs, constant
        self.n_rows = n_rows
        self.token = [[0, 0, 0]] * len(edges)  # what PySCIPOpt checks a cached edge list against


class GraphExtractor:
    """Extracts node states from a solving Model, reusing the LP's edges while the LP rows are unchanged."""

    def __init__(self, cache: bool = True):
        self.cache = cache
        self._edges: _EdgeCache | None = None

    def extract(self, model: Any) -> Graph:
        """The normalised bipartite graph of the current LP of ``model`` (called from a branching rule)."""
        cached = self._edges if self.cache else None
        cols = rows = None
        if cached is not None:
            try:
                cols, _, rows, _ = model.getBipartiteGraphRepresentation(prev_edge_features=cached.token)
            except Warning:  # the number of LP nonzeros changed: recompute everything
                cols = None
            if cols is not None and len(rows) != cached.n_rows:
                cols = None
        if cols is None:
            cols, edges, rows, _ = model.getBipartiteGraphRepresentation()
            edge_arr = np.asarray(edges, dtype=np.float64).reshape(-1, 3)
            sides = np.array([(r.getLhs(), r.getRhs(), r.getConstant()) for r in model.getLPRowsData()],
                             dtype=np.float64).reshape(-1, 3)
            cached = _EdgeCache(edge_arr, sides, len(rows))
            if self.cache:
                self._edges = cached
        return normalise(np.asarray(cols, dtype=np.float64), np.asarray(rows, dtype=np.float64).reshape(-1, 14),
                         cached.edges, cached.sides, max(model.getNLPs(), 0))


def normalise(cols: np.ndarray, rows: np.ndarray, edges: np.ndarray, sides: np.ndarray, n_lps: int) -> Graph:
    """Gasse's normalisation: objective by its norm, rows by their norm, each row split by its finite sides."""
    obj = cols[:, _C["obj_coef"]]
    obj_norm = float(np.linalg.norm(obj)) or 1.0
    var = cols.copy()
    var[:, _C["obj_coef"]] /= obj_norm
    var[:, _C["red_cost"]] /= obj_norm
    var[:, _C["age"]] /= n_lps + 5
    norm = rows[:, _R["norm"]].copy()
    norm[norm == 0] = 1.0
    has_lhs = rows[:, _R["has_lhs"]] > 0
    has_rhs = rows[:, _R["has_rhs"]] > 0
    lhs = np.where(has_lhs, sides[:, 0] - sides[:, 2], 0.0)
    rhs = np.where(has_rhs, sides[:, 1] - sides[:, 2], 0.0)
    age = rows[:, _R["age"]] / (n_lps + 5)
    dual = rows[:, _R["dual"]] / (norm * obj_norm)
    cos = rows[:, _R["obj_cosine"]]
    # rhs rows: a x <= rhs as they are; lhs rows: -a x <= -lhs
    rhs_feats = np.stack([cos, rhs / norm, rows[:, _R["at_rhs"]], dual, age], axis=1)[has_rhs]
    lhs_feats = np.stack([-cos, -lhs / norm, rows[:, _R["at_lhs"]], -dual, age], axis=1)[has_lhs]
    cons = np.concatenate([rhs_feats, lhs_feats]).astype(np.float32)
    rhs_id = np.full(len(rows), -1)
    rhs_id[has_rhs] = np.arange(int(has_rhs.sum()))
    lhs_id = np.full(len(rows), -1)
    lhs_id[has_lhs] = int(has_rhs.sum()) + np.arange(int(has_lhs.sum()))
    e_col = edges[:, 0].astype(np.int64)
    e_row = edges[:, 1].astype(np.int64)
    e_val = edges[:, 2] / norm[e_row]
    in_rhs = has_rhs[e_row]
    in_lhs = has_lhs[e_row]
    cons_idx = np.concatenate([rhs_id[e_row[in_rhs]], lhs_id[e_row[in_lhs]]])
    var_idx = np.concatenate([e_col[in_rhs], e_col[in_lhs]])
    attr = np.concatenate([e_val[in_rhs], -e_val[in_lhs]]).astype(np.float32)[:, None]
    return Graph(cons, np.stack([cons_idx, var_idx]).astype(np.int64), attr, var.astype(np.float32))


def node_features(model: Any, cands: list[Any], sols: list[float], fracs: list[float]) -> np.ndarray:
    """Cheap per-candidate features for the hybrid policy: fractionality, LP value, pseudo-cost scores."""
    ps = np.array([model.getVarPseudocostScore(v, s) for v, s in zip(cands, sols)], dtype=np.float64)
    f = np.asarray(fracs, dtype=np.float64)
    top = ps.max() if len(ps) and ps.max() > 0 else 1.0
    return np.stack([f, np.minimum(f, 1 - f), np.asarray(sols, dtype=np.float64), ps / top, np.log1p(ps)],
                    axis=1).astype(np.float32)


def candidate_positions(cands: list[Any]) -> np.ndarray:
    """LP column positions of the branching candidates (their rows in ``Graph.var``)."""
    return np.array([v.getCol().getLPPos() for v in cands], dtype=np.int64)
