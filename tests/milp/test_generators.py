"""The four Gasse generators: seeded, readable by SCIP, the expected shape and structure."""

from __future__ import annotations

import pytest

from opsrl.milp.generators import barabasi_albert, generate_text, greedy_clique_partition, rng_for
from opsrl.milp.problem import MILPInstance, parse_model

SMALL = {
    "setcover": {"nrows": 60, "ncols": 120},
    "cauctions": {"n_items": 20, "n_bids": 60},
    "facilities": {"n_customers": 8, "n_facilities": 6},
    "indset": {"n_nodes": 50},
}


@pytest.mark.parametrize("family", sorted(SMALL))
def test_generator_is_seeded_and_readable(family):
    text = generate_text(family, 3, 0, **SMALL[family])
    assert text == generate_text(family, 3, 0, **SMALL[family])
    assert text != generate_text(family, 3, 1, **SMALL[family])
    parsed = parse_model(MILPInstance(name=family, text=text))
    assert len(parsed.names) > 0 and len(parsed.lhs) > 0


def test_setcover_covers_every_row_and_uses_every_column():
    p = parse_model(MILPInstance(name="sc", text=generate_text("setcover", 0, 0, nrows=60, ncols=120)))
    assert len(p.lhs) == 60 and len(p.names) == 120
    assert (p.lhs == 1).all() and (p.values == 1).all()
    assert (p.indptr[1:] - p.indptr[:-1] >= 1).all()  # every row covered by some column
    import numpy as np

    assert (np.bincount(p.indices, minlength=120) >= 2).all()  # every column in two rows at least
    assert p.sense == "min" and p.integer.all()


def test_facilities_shape():
    p = parse_model(MILPInstance(name="fl", text=generate_text("facilities", 0, 0, n_customers=8, n_facilities=6)))
    assert len(p.names) == 8 * 6 + 6
    assert len(p.lhs) == 8 + 6 + 1 + 8 * 6  # demand, capacity, total capacity, tightening rows
    assert p.integer.sum() == 6  # only the opening decisions are integer


def test_clique_partition_is_a_partition_into_cliques():
    adj = barabasi_albert(rng_for(0, 0), 80, 4)
    assert all(len(a) >= 4 for a in adj)
    cliques = greedy_clique_partition(adj)
    nodes = sorted(v for c in cliques for v in c)
    assert nodes == list(range(80))
    for c in cliques:
        assert all(b in adj[a] for a in c for b in c if a != b)
