"""Distributions: disjoint seeded splits, mixes, user folders, hardness labels."""

from __future__ import annotations

import pytest

from opsrl.core.errors import UsageError
from opsrl.milp.distributions import Distribution, Mix, hardness, resolve


def test_splits_are_disjoint_and_stable(milp_data):
    d = Distribution("sc-tiny", "setcover", {"nrows": 30, "ncols": 60}, split_sizes={"train": 3, "val": 2, "test": 2})
    idx = {d.index(s, i) for s in ("train", "val", "test") for i in range(d.split_sizes[s])}
    assert len(idx) == 7
    a = d.instance("val", 1)
    assert a.path.startswith(str(milp_data))
    assert open(a.path).read() == open(d.instance("val", 1).path).read()
    assert open(a.path).read() != open(d.instance("test", 1).path).read()
    with pytest.raises(UsageError):
        d.instance("test", 5)


def test_catalogue_mix_and_folder(milp_data, tmp_path):
    assert resolve("setcover-medium").params == {"nrows": 1000}
    mix = resolve("mix")
    assert isinstance(mix, Mix) and [m.family for m in mix.members] == ["setcover", "cauctions", "facilities", "indset"]
    sub = resolve("mix:indset-easy,cauctions-easy")
    insts = sub.instances("test", 4)
    assert [i.provenance["generator"] for i in insts] == ["indset", "cauctions", "indset", "cauctions"]
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "a.lp").write_text("Minimize\n obj: x\nSubject To\n c: x >= 1\nEnd\n")
    (folder / "notes.txt").write_text("ignored")
    fd = resolve(f"folder:{folder}")
    assert [i.name for i in fd.instances("train")] == ["a"]
    with pytest.raises(UsageError):
        resolve("nonsense")


def test_hardness_thresholds():
    assert hardness(5, True) == "easy"
    assert hardness(500, True) == "medium"
    assert hardness(50, False) == "hard"
    assert hardness(50, True, thresholds=(10, 20)) == "hard"
