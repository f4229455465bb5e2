"""Solution pictures for the routing problems: tsp tours, cvrp routes, op tours with prizes, as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from opsrl.core.errors import UsageError


def _indices(seq: Any, n: int, what: str) -> list[int]:
    """``seq`` as a list of node indices in 0..n-1; anything else is a one-line error."""
    try:
        out = [int(v) for v in seq]
    except (TypeError, ValueError):
        raise UsageError(f"cannot plot {what}: expected a list of node indices") from None
    if bad := [v for v in out if not 0 <= v < n]:
        raise UsageError(f"cannot plot {what}: node indices out of range 0..{n - 1}: {bad[:8]}")
    return out


def plot_solution(problem: str, instance: Any, solution: Any, path: Path, title: str = "") -> None:
    """Draw a tsp tour, cvrp routes (one colour each, depot marked) or an op tour (nodes sized by prize) to a PNG."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # Agg through savefig, no pyplot global state

    if problem not in ("tsp", "cvrp", "op"):
        raise UsageError(f"--plot: problem {problem} has no solution plot (tsp, cvrp, op only)")
    coords = np.asarray(instance.coords, dtype=float)
    n = len(coords)
    if n == 0 or np.ptp(coords, axis=0).max() == 0:
        raise UsageError(f"--plot: instance {instance.name} has no node coordinates to draw")
    fig = Figure(figsize=(6.4, 6.4), layout="constrained")
    ax = fig.subplots()
    x, y = coords[:, 0], coords[:, 1]
    if problem in ("cvrp", "op"):
        ax.scatter(x[:1], y[:1], marker="s", s=90, color="black", zorder=4, label="depot")

    if problem == "tsp":
        tour = _indices(solution, n, "the tour")
        ax.scatter(x, y, s=14, color="tab:blue", zorder=3)
        if tour:
            closed = [*tour, tour[0]]
            ax.plot(x[closed], y[closed], color="tab:blue", lw=1.2)
    elif problem == "cvrp":
        if not isinstance(solution, (list, tuple)):
            raise UsageError("cannot plot the routes: expected a list of routes")
        cmap = colormaps["tab20"]
        ax.scatter(x[1:], y[1:], s=14, color="0.35", zorder=3)
        for k, route in enumerate(solution):
            r = _indices(route, n, f"route {k + 1}")
            if r:
                walk = [0, *r, 0]
                colour = cmap((2 * k) % 20 + (k // 10) % 2)  # the 10 dark shades first, then the light ones
                ax.plot(x[walk], y[walk], color=colour, lw=1.2, label=f"route {k + 1}" if k < 12 else None)
        ax.legend(fontsize="x-small", loc="best")
    else:
        tour = _indices(solution, n, "the tour")
        prizes = np.asarray(instance.prizes, dtype=float)
        sizes = 10 + 120 * prizes / max(float(prizes.max()), 1e-12)
        visited = np.zeros(n, dtype=bool)
        visited[tour] = True
        unvisited = ~visited
        unvisited[0] = visited[0] = False  # the depot is drawn on its own
        ax.scatter(x[unvisited], y[unvisited], s=sizes[unvisited], facecolors="none", edgecolors="0.55",
                   label="not visited", zorder=3)
        ax.scatter(x[visited], y[visited], s=sizes[visited], color="tab:orange", label="visited", zorder=3)
        if tour:
            walk = [0, *tour, 0]
            ax.plot(x[walk], y[walk], color="tab:orange", lw=1.2)
        ax.legend(fontsize="small", loc="best")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or f"{problem} {instance.name}")
    fig.savefig(Path(path), dpi=110)
