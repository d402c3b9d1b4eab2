"""test_report module and module_utils.report: junit.xml, summary.md, results.json and report.html.

The report is pure file output, so these tests feed it results shaped like the ones the functional_tests
role records (including the load test's real histogram shape from traffic.summarize) and read the files
back with real parsers: json, ElementTree (through tests.helpers.parse_junit) and html.parser.
"""

from __future__ import annotations

import json
import re
import typing as t
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import report, report_html, traffic
from ansible_collections.pypi_ops.pypiserver.plugins.modules import test_report
from tests.helpers import parse_junit

STAMP = "2030-01-02T03:04:05Z"
PROPS = {"target": "local", "url": "http://127.0.0.1:8080/", "run_id": "r123"}
HOSTILE = "<script>alert('x')</script> & \"quoted\" <img src=http://evil.example/x.png>"
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


def _ops(kind: str, millis: list[float], failed: int = 0) -> list[traffic.Op]:
    ops = [traffic.Op(kind, f"f{i}.whl", True, 200, ms / 1000.0, 10, "") for i, ms in enumerate(millis)]
    return ops + [traffic.Op(kind, "bad.whl", False, 500, 0.0001, 0, "boom")] * failed


UP = traffic.summarize(_ops("upload", [0.4, 3, 3.5, 7, 15, 15, 40, 120, 6000], failed=2), 2.0)
DOWN = traffic.summarize(_ops("download", [0.2, 0.9, 1.5, 4, 4, 4, 9]), 1.0)


def _results(**override: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    base = {
        "deploy": {
            "id": "deploy",
            "priority": "",
            "status": "passed",
            "duration": 2.5,
            "reason": "local",
            "figures": {},
        },
        "upload": {
            "id": "upload",
            "priority": "p0",
            "status": "passed",
            "duration": 4.25,
            "reason": "ok",
            "figures": {},
        },
        "auth": {"id": "auth", "priority": "p2", "status": "failed", "duration": 1.0, "reason": HOSTILE, "figures": {}},
        "large_package": {
            "id": "large_package",
            "priority": "p2",
            "status": "passed",
            "duration": 9.0,
            "reason": "110.0 MiB wheel",
            "figures": {"size_mib": 110.0, "upload_mib_s": 85.3, "download_mib_s": 240.7},
        },
        "load": {
            "id": "load",
            "priority": "p2",
            "status": "passed",
            "duration": 6.5,
            "reason": "7/9 uploads",
            "figures": {
                "up_p50_ms": UP["p50_ms"],
                "up_p95_ms": UP["p95_ms"],
                "down_p50_ms": DOWN["p50_ms"],
                "up_hist": UP["histogram"],
                "down_hist": DOWN["histogram"],
            },
        },
    }
    for key, value in override.items():
        if value is None:
            base.pop(key)
        else:
            base[key] = value
    return list(base.values())


def _write(tmp_path: Path, results: list[dict[str, t.Any]], props: dict[str, t.Any] = PROPS) -> dict[str, Path]:
    paths = report.write(str(tmp_path / "reports"), report.normalize(results), "suite", props, generated_at=STAMP)
    return {k: Path(v) for k, v in paths.items()}


class Page(HTMLParser):
    """Every tag with its attributes, svg <title> texts, the visible text, and nesting errors."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.svg_titles: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.stack[-2:] and self.stack[-1] == "title" and "svg" in self.stack:
            self.svg_titles.append(data)


def _parse(path: Path) -> tuple[str, Page]:
    raw = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(raw)
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors, page.stack)
    return raw, page


def _assert_self_contained(raw: str, page: Page) -> None:
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href"):
            value = (attrs.get(name) or "").strip().lower()
            assert not re.match(r"^(https?:)?//", value), (tag, name, value)
        assert tag not in ("script", "link", "iframe", "img", "object", "embed"), tag
    lowered = raw.lower()
    for needle in ("<script", "<link", "@import", "url(http", "url(//"):
        assert needle not in lowered, needle


def _buckets(hist: list[dict[str, t.Any]]) -> dict[str, int]:
    """Histogram as {bar label: count}, labels as report.html draws them."""
    out, previous = {}, None
    for bucket in hist:
        edge = bucket["le_ms"]
        out[f"≤{edge}" if edge is not None else f">{previous}"] = bucket["count"]
        previous = edge if edge is not None else previous
    return out


# --- results.json -----------------------------------------------------------------------------------------


def test_results_json_round_trips_and_matches_the_input(tmp_path):
    results = _results()
    paths = _write(tmp_path, results)
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert list(doc) == ["format_version", "suite", "generated_at", "properties", "counts", "duration", "tests"]
    assert doc["suite"] == "suite" and doc["generated_at"] == STAMP and doc["properties"] == PROPS
    assert list(doc["properties"]) == ["target", "url", "run_id"]
    assert doc["counts"] == {"passed": 4, "failed": 1, "skipped": 0, "interrupted": 0, "not_run": 0, "total": 5}
    assert doc["duration"] == pytest.approx(sum(r["duration"] for r in results))
    assert [list(t) for t in doc["tests"]] == [["id", "priority", "status", "duration", "reason", "figures"]] * 5
    for got, sent in zip(doc["tests"], results, strict=True):
        assert got == sent  # figures, histograms included, come back exactly as recorded
    load = doc["tests"][-1]["figures"]
    assert load["up_hist"][-1] == {"le_ms": None, "count": 1}  # the 6000 ms upload, as JSON null
    # same input, same bytes: the key order is stable
    again = report.results_json(report.normalize(results), "suite", PROPS, STAMP)
    assert paths["json"].read_text(encoding="utf-8") == again


def test_results_json_is_strict_json_even_for_odd_figures(tmp_path):
    odd = {
        "id": "x",
        "status": "passed",
        "duration": "1.5",
        "reason": "r",
        "figures": {"nan": float("nan"), "t": (1, 2)},
    }
    paths = _write(tmp_path, [odd])
    doc = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert doc["tests"][0]["figures"] == {"nan": None, "t": [1, 2]}
    assert doc["tests"][0]["duration"] == 1.5 and doc["tests"][0]["priority"] == ""


# --- junit.xml and summary.md stay as they were; lists stay out of them --------------------------------------


def test_junit_and_summary_keep_working_without_list_figures(tmp_path):
    paths = _write(tmp_path, _results())
    junit = parse_junit(paths["junit"])
    assert {k: v["status"] for k, v in junit.items()} == {
        "deploy": "passed",
        "upload": "passed",
        "auth": "failed",
        "large_package": "passed",
        "load": "passed",
    }
    assert junit["auth"]["reason"] == " ".join(HOSTILE.split())
    xml = paths["junit"].read_text()
    summary = paths["summary"].read_text()
    for text in (xml, summary):
        assert f"up_p50_ms={UP['p50_ms']}" in text and "upload_mib_s=85.3" in text
        assert "up_hist" not in text and "le_ms" not in text
    assert "| load | p2 | PASSED | 6.50 | 7/9 uploads |" in summary
    table = "\n".join(report.text_table(report.normalize(_results())))
    assert "up_p95_ms=" in table and "up_hist" not in table


# --- report.html ------------------------------------------------------------------------------------------


def test_html_is_self_contained_and_draws_three_charts(tmp_path):
    raw, page = _parse(_write(tmp_path, _results())["html"])
    _assert_self_contained(raw, page)
    assert raw.count("<svg") == 3
    text = "".join(page.text)
    for test_id in ("deploy", "upload", "auth", "large_package", "load"):
        assert test_id in text
    assert "http://127.0.0.1:8080/" in text and "r123" in text and STAMP in text
    # each status is coloured through its class
    classes = {attrs.get("class") for tag, attrs in page.tags if tag == "tr"}
    assert {"passed", "failed"} <= classes
    # the histogram draws every bucket of both phases with the counts summarize computed
    titles = set(page.svg_titles)
    for phase, hist in (("upload", UP["histogram"]), ("download", DOWN["histogram"])):
        for label, count in _buckets(hist).items():
            assert f"{phase} {label} ms: {count}" in titles
    assert "upload: 85.3 MiB/s" in titles and "download: 240.7 MiB/s" in titles
    assert "auth: failed, 1.00 s" in titles and "load: passed, 6.50 s" in titles


def test_html_escapes_text_from_the_results(tmp_path):
    hostile_props = {"target": "<b>local</b>", "url": "javascript:alert(1)", "run_id": HOSTILE}
    results = _results(
        upload={"id": "<svg onload=alert(1)>", "status": "passed", "duration": 1, "reason": HOSTILE, "figures": {}},
        large_package={"id": "large_package", "status": "skipped", "duration": 0, "reason": HOSTILE, "figures": {}},
    )
    results[0]["figures"] = {"note": HOSTILE}
    raw, page = _parse(_write(tmp_path, results, hostile_props)["html"])
    _assert_self_contained(raw, page)
    text = "".join(page.text)
    assert HOSTILE in text and "<b>local</b>" in text and "<svg onload=alert(1)>" in text
    assert "<img" not in raw and "<b>" not in raw
    assert not [name for _, attrs in page.tags for name in attrs if name.startswith("on")]  # no event handler
    assert raw.count("<svg") == 2  # durations and latency; the skipped large_package is one line
    assert f"the large_package test was skipped ({' '.join(HOSTILE.split())})" in text


@pytest.mark.parametrize(
    ("load", "large", "load_line", "large_line"),
    [
        (None, None, "the load test did not run in this run", "the large_package test did not run in this run"),
        (
            {"id": "load", "status": "failed", "duration": 3, "reason": "12 of 200 operations failed", "figures": {}},
            {"id": "large_package", "status": "skipped", "duration": 0, "reason": "prerequisite upload failed"},
            "the load test failed (its reason is in the table above)",
            "the large_package test was skipped (prerequisite upload failed)",
        ),
        (
            {"id": "load", "status": "passed", "duration": 3, "reason": "ok", "figures": {"up_p50_ms": 3.0}},
            {"id": "large_package", "status": "passed", "duration": 3, "reason": "ok", "figures": {"size_mib": 1}},
            "the load test recorded no latency histogram",
            "the large_package test recorded no upload_mib_s and download_mib_s",
        ),
        (
            {
                "id": "load",
                "status": "passed",
                "duration": 3,
                "reason": "ok",
                "figures": {"up_hist": [{"le_ms": "x", "count": -1}], "down_hist": "garbage"},
            },
            {
                "id": "large_package",
                "status": "passed",
                "duration": 3,
                "reason": "ok",
                "figures": {"upload_mib_s": "fast", "download_mib_s": 3},
            },
            "the load test recorded no latency histogram",
            "the large_package test recorded no upload_mib_s and download_mib_s",
        ),
    ],
    ids=["not-run", "failed-and-skipped", "passed-without-figures", "garbage-figures"],
)
def test_html_says_why_a_chart_is_missing(tmp_path, load, large, load_line, large_line):
    raw, page = _parse(_write(tmp_path, _results(load=load, large_package=large))["html"])
    _assert_self_contained(raw, page)
    assert raw.count("<svg") == 1  # only the durations
    notes = [d.strip() for d in page.text if d.strip().startswith("No ")]
    assert f"No latency distribution: {load_line}." in notes
    assert f"No throughput chart: {large_line}." in notes


def test_html_draws_one_phase_when_only_one_histogram_is_usable(tmp_path):
    load = _results()[-1]
    load["figures"] = {"up_hist": UP["histogram"], "down_hist": None}
    raw, page = _parse(_write(tmp_path, _results(load=load))["html"])
    assert raw.count("<svg") == 3
    assert any(title.startswith("upload ") for title in page.svg_titles)
    assert not any(title.startswith("download ≤") for title in page.svg_titles)


def test_zero_tests(tmp_path):
    paths = _write(tmp_path, [])
    raw, page = _parse(paths["html"])
    _assert_self_contained(raw, page)
    assert "<svg" not in raw
    text = "".join(page.text)
    assert "NO TESTS" in text and "No test ran" in text and "No durations to draw: no test ran." in text
    doc = json.loads(paths["json"].read_text())
    assert doc["tests"] == [] and doc["counts"]["total"] == 0 and doc["duration"] == 0
    assert parse_junit(paths["junit"]) == {}


# --- the module ---------------------------------------------------------------------------------------------


def test_module_returns_every_path(tmp_path, run_module):
    dest = tmp_path / "out"
    res = run_module(test_report, {"results": _results(), "dest": str(dest), "properties": PROPS})
    assert not res.failed, res
    assert res["json"] == str(dest / "results.json") and res["html"] == str(dest / "report.html")
    assert res["junit"] == str(dest / "junit.xml") and res["summary"] == str(dest / "summary.md")
    assert res["counts"]["failed"] == 1 and res["failed_tests"] == ["auth"]
    doc = json.loads(Path(res["json"]).read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["generated_at"])
    assert doc["generated_at"] in Path(res["html"]).read_text()


def test_module_names_an_unwritable_dest(tmp_path, run_module):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = run_module(test_report, {"results": _results(), "dest": str(blocker / "reports")})
    assert res.failed
    assert (
        res["msg"].startswith(f"Cannot write the report to {blocker / 'reports'}") and "pypi_report_dir" in res["msg"]
    )


def _with_matrix() -> list[dict[str, t.Any]]:
    matrix = [
        {
            "upload": "twine",
            "install": "pip",
            "status": "passed",
            "reason": "pip installed 1.0.0",
            "upload_seconds": 0.84,
            "install_seconds": 2.06,
        },
        {
            "upload": "uv",
            "install": "pip",
            "status": "failed",
            "reason": "install with pip failed: <got 9.9> | x",
            "upload_seconds": 0.3,
            "install_seconds": None,
        },
    ]
    findings = [{"check": "hash_fragments", "pep": "503", "status": "warn", "detail": "no hash on 1 link"}]
    return report.normalize(
        [
            {"id": "index_conformance", "priority": "p1", "status": "passed", "duration": 1.0, "reason": "ok",
             "figures": {"findings": findings, "supports": {"pep691_json": False}}},
            {"id": "clients", "priority": "p2", "status": "failed", "duration": 2.0, "reason": "1 of 2 failed",
             "figures": {"matrix": matrix, "pairs_passed": 1}},
        ]
    )  # fmt: skip


def test_summary_and_html_show_the_client_matrix_and_conformance(tmp_path):
    results = _with_matrix()
    md = report.summary_md(results, "suite", {})
    assert (
        "## Client matrix" in md
        and "| twine | pip | PASSED | upload 0.84 s + install 2.06 s | pip installed 1.0.0 |" in md
    )
    # the pipe cannot break the table; an install that did not run has no time
    assert "| uv | pip | FAILED | upload 0.30 s | install with pip failed: <got 9.9> \\| x |" in md
    assert "## Index conformance" in md and "| hash_fragments | 503 | WARN | no hash on 1 link |" in md
    page = report_html.report_html(results, "suite", {}, "2026-01-01T00:00:00Z")
    assert "<h2>Client matrix</h2>" in page and "&lt;got 9.9&gt;" in page and "<got 9.9>" not in page
    assert '<span class="badge warn">WARN</span>' in page
    # without those tests, neither section appears
    plain = report.summary_md(results[:0], "suite", {})
    assert "Client matrix" not in plain and "Index conformance" not in plain
