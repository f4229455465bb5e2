"""The HTML report: one self-contained page (images as data URIs) with the summary, profiles, gap-vs-time,
routing solution drawings and training curves; merged results files; and it renders in a headless browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import opsrl
from opsrl.bench import read_results, run_benchmark, write_report
from opsrl.core.errors import OpsrlError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny cvrp campaign and a tiny kp one (separate files), and a training-curve CSV."""
    root = tmp_path_factory.mktemp("campaign")
    run_benchmark(opsrl.generate("cvrp", 8, seed=0, count=2), ["pyvrp", "ortools"], time_limit=0.5, seeds=[0],
                  out=root / "cvrp.parquet", progress=False)
    run_benchmark(opsrl.generate("kp", 10, seed=0, count=2), ["ortools"], time_limit=2, seeds=[0],
                  out=root / "kp.parquet", progress=False)
    curve = root / "train.curve.csv"
    curve.write_text("epoch,step,train_loss,val_gap_pct,lr,seconds\n1,10,2.3,12.0,0.001,3\n2,20,1.9,9.5,0.001,6\n")
    return root / "cvrp.parquet", root / "kp.parquet", curve


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_html_page_is_self_contained_with_every_section(campaign, tmp_path) -> None:
    cvrp, kp, curve = campaign
    paths = write_report([cvrp, kp], tmp_path / "r", curves=[curve])
    html = tmp_path / "r" / "report.html"
    assert html in paths and (tmp_path / "r" / "report.md") in paths
    page = html.read_text()
    for heading in ("Summary per solver", "Gap vs time", "Performance profiles", "Solutions",
                    "Training curves and cost trajectories", "Provenance", "Per instance"):
        assert f">{heading}<" in page, heading
    images = _images(page)
    assert len(images) == 2 + 2 * 2 + 1  # gap-vs-time, profiles, 2 instances x 2 solvers, curves
    assert all(img.startswith(PNG) and len(img) > 5_000 for img in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from outside the page
    for solver in ("pyvrp", "ortools"):
        assert f"<td>{solver}</td>" in page
    assert "cvrp8-s0-1" in page and "kp10-s0-0" in page and "cvrp.parquet" in page and "kp.parquet" in page


def test_drawings_show_the_stored_solutions_of_regenerated_instances(campaign, tmp_path) -> None:
    cvrp, _, _ = campaign
    paths = write_report(cvrp, tmp_path, drawings=1)
    drawn = [p for p in paths if p.parent.name == "solutions"]
    assert len(drawn) == 2 and all(p.read_bytes().startswith(PNG) for p in drawn)
    df, _ = read_results(cvrp)
    names = {p.name.split("__")[0] for p in drawn}
    assert len(names) == 1 and names <= set(df["instance"])
    assert not [p for p in write_report(cvrp, tmp_path / "none", drawings=0) if p.parent.name == "solutions"]


def test_report_cli_writes_html_and_rejects_a_bad_curve(campaign, tmp_path, cli) -> None:
    cvrp, kp, curve = campaign
    code, out, err = cli("report", cvrp, kp, "--out", tmp_path / "r", "--curves", curve)
    assert code == 0, err
    assert "report.html" in out and "curves.png" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx\n")
    code, _, err = cli("report", cvrp, "--out", tmp_path / "r2", "--curves", bad)
    assert code == 1 and "bad.csv" in err and "numeric" in err
    with pytest.raises(OpsrlError, match="nothere.csv"):
        write_report(cvrp, tmp_path / "r3", curves=[tmp_path / "nothere.csv"])


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_page_renders_with_its_images_in_a_headless_browser(campaign, tmp_path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    cvrp, kp, curve = campaign
    write_report([cvrp, kp], tmp_path, curves=[curve])
    url = (tmp_path / "report.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=3000"]
    # the browser's own script checks that every image decoded (naturalWidth > 0) after layout
    probe = tmp_path / "probe.html"
    probe.write_text((tmp_path / "report.html").read_text().replace(
        "</body>", "<script>window.onload=function(){var i=[].slice.call(document.images);"
                   "document.title='IMAGES '+i.length+' DECODED '+i.filter(function(x){return x.naturalWidth>0})"
                   ".length;};</script></body>"))
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=90).stdout
    found = re.search(r"<title>IMAGES (\d+) DECODED (\d+)</title>", dom)
    assert found, dom[:500]
    assert int(found[1]) == 7 and found[2] == found[1]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1200,1600", f"--screenshot={shot}", url],
                   capture_output=True, timeout=90)
    assert shot.read_bytes().startswith(PNG)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels[..., :3].std() > 0.05  # not a blank page
