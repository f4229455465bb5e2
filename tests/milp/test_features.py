"""Node features: cached edges give exactly the freshly computed graph at every node."""

from __future__ import annotations

import numpy as np

from opsrl.milp.features import N_CONS_FEATS, N_VAR_FEATS, GraphExtractor, candidate_positions
from opsrl.milp.generators import generate_text
from opsrl.milp.problem import MILPInstance, read_model
from opsrl.milp.solvers import configure


def test_cached_edges_equal_fresh_features():
    from pyscipopt import Branchrule, SCIP_RESULT

    from pyscipopt import SCIP_PARAMSETTING

    inst = MILPInstance(name="sc", text=generate_text("setcover", 5, 0, nrows=200, ncols=200))
    model = read_model(inst.model_path())
    configure(model, 60, 0, learn2branch=True)
    for setting in (model.setPresolve, model.setSeparating, model.setHeuristics):  # a tree, quickly
        setting(SCIP_PARAMSETTING.OFF)
    model.setLongintParam("limits/nodes", 25)
    checked = []

    class Check(Branchrule):
        def __init__(self):
            self.cached = GraphExtractor(cache=True)

        def branchexeclp(self, allowaddcons):
            a = self.cached.extract(model)
            b = GraphExtractor(cache=False).extract(model)
            for key, x in a.arrays().items():
                np.testing.assert_array_equal(x, b.arrays()[key], err_msg=key)
            cands = model.getLPBranchCands()[0]
            pos = candidate_positions(cands)
            assert a.var.shape[1] == N_VAR_FEATS and a.cons.shape[1] == N_CONS_FEATS
            assert (pos >= 0).all() and (pos < len(a.var)).all()
            assert np.allclose(a.var[pos, 10], model.getLPBranchCands()[2], atol=1e-6)  # fractionality column
            checked.append(len(cands))
            return {"result": SCIP_RESULT.DIDNOTRUN}

    model.includeBranchrule(Check(), "check", "", priority=10**7, maxdepth=-1, maxbounddist=1.0)
    model.optimize()
    assert len(checked) >= 3
