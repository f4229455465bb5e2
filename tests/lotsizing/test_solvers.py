"""The baselines: the perfect-information MIP is a lower bound, every solver returns feasible decisions."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from opsrl.core.run import run_solver
from opsrl.lotsizing.problem import LotSizing, encode_actions, scenario_costs, simulate
from tests.lotsizing.helpers import tiny

P = LotSizing()


def _brute_force(s, k):
    """The cheapest plan for scenario k with its demand known, by enumerating all plans."""
    sc = s.scenarios
    plans = np.array(list(itertools.product(range(3), repeat=s.horizon)))[:, :, None]
    n = len(plans)
    costs = simulate(s, plans, np.repeat(sc.inventory[k:k + 1], n, 0), np.repeat(sc.setup[k:k + 1], n, 0),
                     np.repeat(sc.demand[k:k + 1], n, 0))["total"]
    return float(costs.min())


def test_pi_mip_matches_brute_force_and_bounds_every_policy():
    s = tiny(horizon=5, holding=0.0)  # no holding cost: discarding stock (the MIP's relaxation) gains nothing
    pi = run_solver(s, "pi-mip", time_limit=30, isolate=False)
    assert pi.feasible and str(pi.status) == "optimal"
    _, pi_costs = scenario_costs(s, pi.solution)
    best = [_brute_force(s, k) for k in range(3)]
    assert pi_costs["total"] == pytest.approx(best)
    assert pi.stats["scenario_bounds"] == pytest.approx(best, abs=1e-6)
    rng = np.random.default_rng(0)
    others = [run_solver(s, name, time_limit=30, isolate=False) for name in ("heuristic", "rolling-mip")]
    randoms = rng.integers(0, 3, (5, 3, s.horizon, 1))
    for sol in [o.solution for o in others] + [encode_actions(s, r) for r in randoms]:
        idx, costs = scenario_costs(s, sol)
        for k, c in zip(idx, costs["total"]):
            assert pi.stats["scenario_bounds"][k] <= c + 1e-9


def test_pi_mip_bound_holds_with_holding_costs():
    s = tiny(horizon=5, holding=0.5)
    pi = run_solver(s, "pi-mip", time_limit=30, isolate=False)
    best = [_brute_force(s, k) for k in range(3)]
    assert all(b <= c + 1e-9 for b, c in zip(pi.stats["scenario_bounds"], best))


def test_heuristic_and_rolling_respect_masks():
    s = tiny(production=np.array([[5, 0]]))
    for name in ("heuristic", "rolling-mip"):
        r = run_solver(s, name, time_limit=30, isolate=False)
        assert r.feasible, r.violations


def test_solve_cli_prints_the_mean_cost(cli):
    code, out, _ = cli("solve", "--problem", "lotsizing", "--instance", "15x5", "--solver", "heuristic", "--json")
    data = json.loads(out)
    assert code == 0 and data["feasible"] and data["objective"] > 0


def test_solve_cli_one_line_errors(cli, tmp_path):
    code, _, err = cli("solve", "--problem", "lotsizing", "--instance", str(tmp_path / "none.json"),
                       "--solver", "heuristic")
    assert code == 1 and "no such file" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("solve", "--problem", "lotsizing", "--instance", "15x5", "--solver", "ppo")
    assert code == 2 and "checkpoint" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("solve", "--problem", "lotsizing", "--instance", "15x5", "--solver", "pdppo",
                       "--param", f"checkpoint={tmp_path / 'x.safetensors'}")
    assert code != 0 and "checkpoint not found" in err


def test_user_setting_file_solves(cli, tmp_path):
    path = tmp_path / "mine.json"
    P.save([tiny()], path)
    code, out, _ = cli("solve", "--problem", "lotsizing", "--instance", str(path), "--solver", "heuristic", "--json")
    assert code == 0 and json.loads(out)["instance"] == "tiny"


def test_pi_mip_plan_is_no_worse_than_its_warm_starts():
    """The rolling perfect-foresight warm start beats or ties the heuristic, and the final plan beats or ties it."""
    s = tiny(horizon=8, holding=0.5)
    pi = run_solver(s, "pi-mip", time_limit=30, isolate=False, params={"scenario_time": 0.5})
    heur = run_solver(s, "heuristic", time_limit=30, isolate=False)
    _, pi_costs = scenario_costs(s, pi.solution)
    idx, h_costs = scenario_costs(s, heur.solution)
    warm = pi.stats["warm_start_costs"]
    assert pi.stats["warm_start"] == "rolling" and len(warm) == len(pi_costs["total"])
    for k, (c, w) in enumerate(zip(pi_costs["total"], warm)):
        assert c <= w + 1e-9 and w <= h_costs["total"][k] + 1e-9


def test_pi_mip_rejects_an_unknown_warm_start():
    from opsrl.core.errors import UsageError

    with pytest.raises(UsageError, match="warm"):
        run_solver(tiny(horizon=3), "pi-mip", time_limit=10, isolate=False, params={"warm": "nope"})


def test_rolling_mip_node_limit_gives_the_same_choice_every_time():
    """With a node limit that binds before the (generous) time limit, the MIP's choice does not depend on
    how loaded the machine is: two solves agree, and SCIP reports the node limit or optimality."""
    from opsrl.core.errors import UsageError
    from opsrl.lotsizing.solvers import expected_forecast, mip_choice

    s = P.builtin("15x5")
    sc, forecast = s.scenarios, expected_forecast(s, 5)
    runs = [mip_choice(s, sc.inventory[0], sc.setup[0], forecast, step_time=60, node_limit=1) for _ in range(2)]
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] in ("nodelimit", "optimal")
    with pytest.raises(UsageError, match="node_limit=-1"):
        run_solver(tiny(), "rolling-mip", time_limit=30, params={"node_limit": -1}, isolate=False)
