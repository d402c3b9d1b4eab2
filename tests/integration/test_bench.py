"""scripts/bench.py in smoke mode (tiny sizes, two rounds): every figure is produced, so the benchmark cannot rot.

No timing is asserted here: the figures are checked for presence, shape and sanity (a ratio is the two medians'
quotient's neighbourhood, a mark agrees with its target), never against a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT))
from scripts import bench  # noqa: E402

FIGURES = {
    "suite_warm",
    "ansible_tasks",
    "ansible_outside_modules",
    "load_overhead",
    "large_upload",
    "large_download",
    "large_upload_twine",
    "peak_rss",
    "scaling_simple_projects",
    "scaling_project_files",
    "scaling_load",
    "production_snapshot",
}


def test_bench_smoke_produces_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["mode"] == "smoke" and data["machine"]["cpus"] >= 1
    figures = {f["id"]: f for f in data["figures"]}
    assert set(figures) == FIGURES
    for fid, fig in figures.items():
        assert fig["value"] is not None and fig["value"] > 0, fid
        assert fig["mark"] in ({"pass", "miss"} if fig["target"] else {"info"}), fid
        assert fig["label"] in proc.stdout, fid  # the table shows it
    for fid in ("load_overhead", "large_upload", "large_download"):
        assert fig_ratio_plausible(figures[fid]), figures[fid]
    # the per-test breakdown and the Ansible counts come from the real run
    assert {t["id"] for t in data["suite"]["tests"]} >= {"connection", "simple_index", "upload"}
    assert data["ansible"]["module_tasks"] > 0 and data["ansible"]["tasks_ran"] >= data["ansible"]["module_tasks"]
    assert set(data["scaling"]) == {"simple_projects", "project_files", "load"}
    assert [p["n"] for p in data["scaling"]["load"]["points"]] == [5, 10, 20]
    # production mode: index_snapshot at each depth on 10 and 40 projects, and the pages one by one beside it
    points = data["production"]["points"]
    assert [p["projects"] for p in points] == [10, 40]
    assert all(p[k] > 0 for p in points for k in ("names", "files", "bytes", "files_pages"))


def fig_ratio_plausible(fig: dict) -> bool:
    """The ratio is a median of per-round ratios: it lies within a factor 10 of the medians' quotient."""
    a, b = fig["value"], fig["baseline"]
    quotient = a / b
    return fig["ratio"] > 0 and quotient / 10 < fig["ratio"] < quotient * 10


@pytest.mark.parametrize(
    ("target", "value", "ratio", "mark"),
    [
        ("<= 60", 59.9, None, "pass"),
        ("<= 60", 60.1, None, "miss"),
        ("<= 1.25", 9.0, 1.3, "miss"),  # a ratio target is judged on the ratio, not the value
        (">= 0.8", 100.0, 0.79, "miss"),
        (">= 0.8", 1.0, 0.8, "pass"),
        ("< 150", 150.0, None, "miss"),
        ("", 3.0, None, "info"),
        ("<= 60", None, None, "skipped"),
    ],
)
def test_figure_marks(target, value, ratio, mark):
    assert bench.Figure("x", "s", "x", value, "s", ratio=ratio, target=target).mark == mark


def test_growth_exponent():
    assert bench.growth([10, 100, 1000], [1.0, 10.0, 100.0]) == pytest.approx(1.0)
    assert bench.growth([10, 100, 1000], [5.0, 1.0, 1.0]) == pytest.approx(0.0)  # the two largest sizes count
    assert "linear" in bench.describe_growth(1.05) and "super" in bench.describe_growth(1.6)


def test_peak_rss_is_the_child_s_own(tmp_path):
    """The launcher forks from a small interpreter: a big benchmark process does not inflate a small child's peak."""
    ballast = bytearray(300 * 1024 * 1024)  # this process now holds 300 MiB
    ballast[::4096] = b"x" * len(ballast[::4096])
    rc, small, _ = bench.run_child([sys.executable, "-c", "pass"], timeout=60)
    assert rc == 0 and small < 100, small
    rc, big, _ = bench.run_child(
        [sys.executable, "-c", "b = bytearray(200 * 1024 * 1024); b[::4096] = b'y' * len(b[::4096])"], timeout=60
    )
    assert rc == 0 and big > 200, big
    del ballast
