"""Distance matrices under TSPLIB's EDGE_WEIGHT_TYPE conventions.

Generated instances use ``EXACT`` (unrounded Euclidean). Files keep their own convention, so
that a tour read from TSPLIB or CVRPLIB is costed the way its best-known value was (nint for EUC_2D).
"""

from __future__ import annotations

import math

import numpy as np

WEIGHT_TYPES = ("EXACT", "EUC_2D", "CEIL_2D", "ATT", "GEO", "EXPLICIT")


def distance_matrix(coords: np.ndarray, weight_type: str = "EXACT") -> np.ndarray:
    """All-pairs distances of ``coords`` (n x 2) under ``weight_type`` (float64 array)."""
    coords = np.asarray(coords, dtype=float)
    if weight_type == "GEO":
        return _geo(coords)
    diff = coords[:, None, :] - coords[None, :, :]
    if weight_type == "ATT":
        r = np.sqrt((diff**2).sum(-1) / 10.0)
        t = np.floor(r + 0.5)
        return np.where(t < r, t + 1.0, t)
    d = np.sqrt((diff**2).sum(-1))
    if weight_type == "EXACT":
        return d
    if weight_type == "EUC_2D":
        return np.floor(d + 0.5)
    if weight_type == "CEIL_2D":
        return np.ceil(d)
    raise ValueError(f"unsupported EDGE_WEIGHT_TYPE {weight_type!r}: expected one of {', '.join(WEIGHT_TYPES)}")


def _geo(coords: np.ndarray) -> np.ndarray:
    """TSPLIB's GEO distance: coordinates are DDD.MM degrees and minutes, result in integer km."""
    deg = np.trunc(coords)
    rad = math.pi * (deg + 5.0 * (coords - deg) / 3.0) / 180.0
    lat, lon = rad[:, 0], rad[:, 1]
    q1 = np.cos(lon[:, None] - lon[None, :])
    q2 = np.cos(lat[:, None] - lat[None, :])
    q3 = np.cos(lat[:, None] + lat[None, :])
    rrr = 6378.388
    d = np.floor(rrr * np.arccos(np.clip(0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3), -1, 1)) + 1.0)
    np.fill_diagonal(d, 0.0)
    return d


def is_integral(weight_type: str) -> bool:
    """Whether distances under this convention are whole numbers (solvers then use them as they are)."""
    return weight_type in ("EUC_2D", "CEIL_2D", "ATT", "GEO")


def integer_matrix(dist: np.ndarray, integral: bool, scale: float = 10_000.0, ceil: bool = False) -> tuple[np.ndarray, float]:
    """An int64 matrix for solvers that need integers, and the factor it was scaled by.

    Integral conventions are passed through (factor 1). Float distances are scaled and rounded;
    with ``ceil`` they are rounded up, so that a length budget met in integers is met exactly.
    """
    if integral:
        return np.rint(dist).astype(np.int64), 1.0
    scaled = dist * scale
    return (np.ceil(scaled) if ceil else np.rint(scaled)).astype(np.int64), scale
