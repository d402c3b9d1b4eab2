"""metrics.prom (module_utils.metrics, written by report.write and so by the test_report module and the guardian).

Every file is read back with prometheus_client's own parsers: the OpenMetrics one (strict: # EOF, no blank line,
one TYPE/HELP/UNIT per family, unit suffix, grouping) and the Prometheus text format 0.0.4 one (what node_exporter's
textfile collector and the Pushgateway read). The load figures come from traffic.summarize, the code the load test
runs, mapped to figure names as roles/functional_tests/tasks/load.yml maps them (and that mapping is checked).
"""

from __future__ import annotations

import calendar
import os
import re
import shutil
import stat
import subprocess
import threading
import time
import typing as t
from pathlib import Path

import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text_004

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import metrics, report, run_state, traffic
from ansible_collections.pypi_ops.pypiserver.plugins.modules import test_report
from tests.helpers import ROOT

STAMP = "2030-01-02T03:04:05Z"
STAMP_EPOCH = calendar.timegm((2030, 1, 2, 3, 4, 5))
SECRET_URL = "http://alice:s3cret-pw@127.0.0.1:8080/"
PROPS = {"target": "local", "url": SECRET_URL, "run_id": "20301020t0304abcdef"}
P = metrics.PREFIX
LABEL_NAMES = {"target", "suite", "test", "priority", "status", "operation", "percentile"}
HOSTILE = 'bad "quote" \\ back\nslash <b> & }{ ,= # EOF'


def _ops(kind: str, millis: list[float]) -> list[traffic.Op]:
    return [traffic.Op(kind, f"f{i}.whl", True, 200, ms / 1000.0, 10, "") for i, ms in enumerate(millis)]


UP = traffic.summarize(_ops("upload", [3, 3.5, 7, 15, 15, 40, 120]), 2.0)
DOWN = traffic.summarize(_ops("download", [0.2, 0.9, 1.5, 4, 4, 4, 9]), 1.0)
# the figures load.yml records from the load_test module's return (upload/download are traffic.summarize results)
LOAD_FIGURES = {
    **{f"up_{k}_ms": UP[f"{k}_ms"] for k in ("p50", "p95", "p99")},
    "up_ops_s": UP["ops_per_s"],
    **{f"down_{k}_ms": DOWN[f"{k}_ms"] for k in ("p50", "p95", "p99")},
    "down_ops_s": DOWN["ops_per_s"],
    "up_hist": UP["histogram"],
    "down_hist": DOWN["histogram"],
}


def _r(test_id: str, status: str = "passed", priority: str = "p0", **extra: t.Any) -> dict[str, t.Any]:
    return {"id": test_id, "priority": priority, "status": status, "duration": 1.5, "reason": "ok", **extra}


def _passed_run() -> list[dict[str, t.Any]]:
    return [
        _r("deploy", priority="setup", duration=2.25),
        _r("connection"),
        _r("upload", duration=4.125),
        _r("replicas", "skipped", "p1", reason="a single replica"),
        _r("large_package", priority="p2", figures={"size_mib": 110.0, "upload_mib_s": 85.3, "download_mib_s": 240.7}),
        _r("load", priority="p2", duration=6.5, figures=LOAD_FIGURES),
    ]


def _write(tmp_path: Path, results: list[dict[str, t.Any]], props: dict[str, t.Any] = PROPS, suite: str = "suite"):
    dest = tmp_path / "reports"
    paths = report.write(str(dest), report.normalize(results), suite, props, generated_at=STAMP)
    assert paths["metrics"] == str(dest / "metrics.prom")
    return dest / "metrics.prom"


def _parse(text: str) -> dict[str, t.Any]:
    """{family name: Metric} from the OpenMetrics parser; the 0.0.4 parser must read the same samples."""
    families = {f.name: f for f in parse_openmetrics(text)}
    assert len(families) == len(list(parse_openmetrics(text)))  # no family split in two
    legacy = {f.name: f for f in parse_text_004(text)}
    assert set(legacy) == set(families)
    for name, fam in families.items():
        assert legacy[name].type == fam.type == "gauge"
        assert [(s.name, s.labels, s.value) for s in legacy[name].samples] == [
            (s.name, s.labels, s.value) for s in fam.samples
        ]
    return families


def _values(family: t.Any, **match: str) -> list[float]:
    return [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in match.items())]


def _one(families: dict[str, t.Any], name: str, **match: str) -> float:
    values = _values(families[P + name], **match)
    assert len(values) == 1, (name, match, values)
    return values[0]


def _assert_conventions(families: dict[str, t.Any], text: str) -> None:
    for name, fam in families.items():
        assert re.fullmatch(r"pypi_ops_verify_[a-z][a-z0-9_]*[a-z0-9]", name), name
        assert not name.endswith(("_total", "_count", "_sum", "_bucket", "_created", "_info")), name
        assert fam.documentation and fam.samples, name
        if name.endswith(("_seconds", "_bytes")) and not name.endswith("_per_second"):
            assert fam.unit == name.rsplit("_", 1)[1], name
        for sample in fam.samples:
            assert sample.name == name and sample.timestamp is None
            assert set(sample.labels) <= LABEL_NAMES, sample
            assert {"target", "suite"} <= set(sample.labels), sample
    assert "s3cret" not in text and "alice" not in text and PROPS["run_id"] not in text and "127.0.0.1" not in text
    assert text.endswith("\n# EOF\n") and "\n\n" not in text


def test_passed_run(tmp_path):
    path = _write(tmp_path, _passed_run())
    text = path.read_text(encoding="utf-8")
    fam = _parse(text)
    _assert_conventions(fam, text)
    assert _one(fam, "run_success") == 1
    assert _one(fam, "last_run_timestamp_seconds") == STAMP_EPOCH
    assert _one(fam, "last_success_timestamp_seconds") == STAMP_EPOCH
    assert _one(fam, "run_duration_seconds") == pytest.approx(2.25 + 1.5 + 4.125 + 1.5 + 1.5 + 6.5)
    assert {s.labels["status"]: s.value for s in fam[P + "tests"].samples} == {
        "passed": 5,
        "failed": 0,
        "skipped": 1,
        "interrupted": 0,
        "not_run": 0,
    }
    assert all(s.labels == {"target": "local", "suite": "suite", **s.labels} for s in fam[P + "tests"].samples)
    # one series per test and status; exactly one of them is 1
    for r in _passed_run():
        by_status = {s.labels["status"]: s.value for s in fam[P + "test_status"].samples if s.labels["test"] == r["id"]}
        assert set(by_status) == set(report.STATUSES)
        assert [k for k, v in by_status.items() if v == 1] == [r["status"]], (r["id"], by_status)
        assert _one(fam, "test_duration_seconds", test=r["id"], priority=r["priority"]) == r.get("duration", 1.5)
    assert len(fam[P + "test_status"].samples) == 5 * len(_passed_run())
    # the load test's quantiles in seconds and its rates, per operation
    for operation, summary in (("upload", UP), ("download", DOWN)):
        for key, percentile in (("p50", "50"), ("p95", "95"), ("p99", "99")):
            got = _one(fam, "load_latency_seconds", operation=operation, percentile=percentile)
            assert got == pytest.approx(summary[f"{key}_ms"] / 1000.0, abs=1e-6)
        assert _one(fam, "load_operations_per_second", operation=operation) == pytest.approx(summary["ops_per_s"])
    assert UP["p99_ms"] > UP["p50_ms"]  # the fixture really spreads the quantiles
    assert _one(fam, "large_package_throughput_bytes_per_second", operation="upload") == round(85.3 * 1048576)
    assert _one(fam, "large_package_throughput_bytes_per_second", operation="download") == round(240.7 * 1048576)
    assert _one(fam, "large_package_size_bytes") == 110 * 1048576
    assert set(fam) == {
        P + n
        for n in (
            "run_success",
            "last_run_timestamp_seconds",
            "last_success_timestamp_seconds",
            "run_duration_seconds",
            "tests",
            "test_status",
            "test_duration_seconds",
            "load_latency_seconds",
            "load_operations_per_second",
            "large_package_throughput_bytes_per_second",
            "large_package_size_bytes",
        )
    }


def test_failed_run(tmp_path):
    results = _passed_run()
    results[2] = _r("upload", "failed", reason='403 for "probe" \\ see the log\nsecond line')
    fam = _parse(_write(tmp_path, results).read_text())
    assert _one(fam, "run_success") == 0
    assert P + "last_success_timestamp_seconds" not in fam  # one run cannot know when an earlier one succeeded
    assert _one(fam, "last_run_timestamp_seconds") == STAMP_EPOCH
    assert _one(fam, "tests", status="failed") == 1 and _one(fam, "tests", status="passed") == 4
    assert _one(fam, "test_status", test="upload", status="failed") == 1
    assert _one(fam, "test_status", test="upload", status="passed") == 0
    assert [
        s.labels["test"] for s in fam[P + "test_status"].samples if s.value == 1 and s.labels["status"] == "failed"
    ] == ["upload"]


@pytest.mark.parametrize(
    "results",
    [
        pytest.param([_r("deploy", priority="setup"), _r("upload", "interrupted")], id="interrupted"),
        pytest.param([_r("deploy", priority="setup"), _r("upload", "not_run")], id="not-run"),
        pytest.param([_r("deploy", priority="setup"), _r("upload", "skipped")], id="only-skips"),
        pytest.param([_r("deploy", priority="setup")], id="only-deploy"),
        pytest.param(
            [_r("deploy"), _r("upload"), _r("load", "skipped", reason="not run: the run deadline (600 s) passed")],
            id="deadline-cut",
        ),
    ],
)
def test_runs_that_prove_nothing_are_not_a_success(tmp_path, results):
    fam = _parse(_write(tmp_path, results).read_text())
    assert _one(fam, "run_success") == 0
    assert P + "last_success_timestamp_seconds" not in fam


def test_no_tests_at_all(tmp_path):
    text = _write(tmp_path, []).read_text()
    fam = _parse(text)
    _assert_conventions(fam, text)
    assert _one(fam, "run_success") == 0 and _one(fam, "run_duration_seconds") == 0
    assert sum(_values(fam[P + "tests"])) == 0
    assert not {P + "test_status", P + "test_duration_seconds", P + "load_latency_seconds"} & set(fam)


def test_a_run_without_load_and_large_figures(tmp_path):
    results = [
        _r("deploy", priority="setup"),
        _r("upload"),
        _r("large_package", "skipped", "p2", reason="prerequisite upload failed"),
    ]
    fam = _parse(_write(tmp_path, results).read_text())
    assert _one(fam, "run_success") == 1
    for name in ("load_latency_seconds", "load_operations_per_second", "large_package_throughput_bytes_per_second"):
        assert P + name not in fam
    assert P + "large_package_size_bytes" not in fam
    assert _one(fam, "test_status", test="large_package", status="skipped") == 1


def test_figures_of_a_test_that_did_not_pass_are_not_exported(tmp_path):
    results = _passed_run()
    results[-1] = _r("load", "failed", "p2", reason="2/9 uploads", figures=LOAD_FIGURES)
    results[-2] = _r("large_package", "failed", "p2", figures={"upload_mib_s": 3.0, "ladder": [{"step": "64 KiB"}]})
    fam = _parse(_write(tmp_path, results).read_text())
    assert not {k for k in fam if "_load_" in k or "_large_package_" in k}


def test_figures_as_text_and_odd_values(tmp_path):
    """Jinja without native types records figures as strings; non-numbers, booleans, NaN and inf are left out."""
    results = [
        _r("deploy", priority="setup"),
        _r("large_package", figures={"size_mib": "1.0", "upload_mib_s": "12.5", "download_mib_s": "n/a"}),
        _r(
            "load",
            figures={
                "up_p50_ms": "4.5",
                "up_p95_ms": True,
                "up_p99_ms": float("nan"),
                "up_ops_s": float("inf"),
                "down_p50_ms": None,
                "down_p95_ms": [1, 2],
                "down_p99_ms": {"x": 1},
                "down_ops_s": "250",
            },
        ),
    ]
    fam = _parse(_write(tmp_path, results).read_text())
    latencies = fam[P + "load_latency_seconds"].samples
    assert [(s.labels["operation"], s.labels["percentile"], s.value) for s in latencies] == [("upload", "50", 0.0045)]
    assert [(s.labels["operation"], s.value) for s in fam[P + "load_operations_per_second"].samples] == [
        ("download", 250)
    ]
    assert [(s.labels["operation"], s.value) for s in fam[P + "large_package_throughput_bytes_per_second"].samples] == [
        ("upload", 12.5 * 1048576)
    ]
    assert _one(fam, "large_package_size_bytes") == 1048576


def test_label_values_are_escaped_and_free_text_never_becomes_a_label(tmp_path):
    results = [
        _r("deploy", priority="setup"),
        _r(HOSTILE, priority=HOSTILE, reason=HOSTILE + " the-reason-text"),
        _r("other", "failed", reason=HOSTILE + " the-reason-text"),
    ]
    text = _write(tmp_path, results, props={"target": HOSTILE, "url": SECRET_URL}, suite=HOSTILE).read_text()
    fam = _parse(text)
    assert "the-reason-text" not in text  # reasons are free text: in summary.md and junit.xml, never in a label
    assert "s3cret" not in text
    assert {s.labels["target"] for f in fam.values() for s in f.samples} == {HOSTILE}
    assert {s.labels["suite"] for f in fam.values() for s in f.samples} == {HOSTILE}
    assert _one(fam, "test_status", test=HOSTILE, priority=HOSTILE, status="passed") == 1
    assert _one(fam, "test_status", test="other", status="failed") == 1
    assert _one(fam, "run_success") == 0
    assert text.count("\n# EOF\n") == 1  # the "# EOF" inside a label value stays inside its quotes


def test_a_repeated_test_id_is_exported_once(tmp_path):
    results = [_r("deploy", priority="setup"), _r("upload", "failed"), _r("upload")]
    fam = _parse(_write(tmp_path, results).read_text())
    assert _one(fam, "test_status", test="upload", status="passed") == 1  # the last result, as report.find reads it
    assert _one(fam, "test_duration_seconds", test="upload") == 1.5


def test_no_target_property(tmp_path):
    fam = _parse(_write(tmp_path, [_r("deploy"), _r("upload")], props={}).read_text())
    assert {s.labels["target"] for s in fam[P + "run_success"].samples} == {"unknown"}


def test_malformed_generated_at_falls_back_to_now():
    before = time.time()
    fam = _parse(metrics.metrics_text(report.normalize([_r("upload")]), "s", {}, "yesterday"))
    assert before - 1 <= _one(fam, "last_run_timestamp_seconds") <= time.time() + 1


# --- the file: atomic, 0644, no temporary left ------------------------------------------------------------------


def test_written_with_mode_0644_and_no_temporary_left(tmp_path):
    old = os.umask(0o077)  # the mode does not depend on the umask
    try:
        path = _write(tmp_path, _passed_run())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "junit.xml",
        "metrics.prom",
        "report.html",
        "results.json",
        "summary.md",
    ]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_keeps_the_previous_file_whole_and_removes_the_temporary(tmp_path, monkeypatch, failing):
    path = _write(tmp_path, _passed_run())
    before = path.read_bytes()

    def boom(*args: t.Any, **kwargs: t.Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        metrics.write(str(path.parent), report.normalize([_r("upload", "failed")]), "suite", PROPS, STAMP)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if "metrics" in p.name) == ["metrics.prom"]


def test_a_reader_never_sees_a_partial_file(tmp_path):
    """A reader polling the file (as the textfile collector does) while runs rewrite it always parses a whole one."""
    dest = tmp_path / "reports"
    dest.mkdir()
    big = [_r(f"test_{i}", "passed" if i % 3 else "failed") for i in range(300)]  # ~200 KiB: many write() calls
    small = [_r("deploy"), _r("upload")]
    metrics.write(str(dest), report.normalize(small), "suite", PROPS, STAMP)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            text = (dest / "metrics.prom").read_text()
            try:
                seen.append(len(_parse(text)[P + "test_status"].samples))
            except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
                errors.append(f"{exc!r}: {text[-200:]!r}")
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            metrics.write(str(dest), report.normalize(big if i % 2 else small), "suite", PROPS, STAMP)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors[0]
    assert set(seen) <= {5 * len(small), 5 * len(big)} and seen
    assert sorted(p.name for p in dest.iterdir()) == ["metrics.prom"]


# --- the module and the guardian -------------------------------------------------------------------------------


def test_module_returns_the_metrics_path(tmp_path, run_module):
    dest = tmp_path / "out"
    res = run_module(test_report, {"results": _passed_run(), "dest": str(dest), "properties": PROPS})
    assert not res.failed, res
    assert res["metrics"] == str(dest / "metrics.prom")
    fam = _parse(Path(res["metrics"]).read_text())
    assert _one(fam, "run_success") == 1 and _one(fam, "tests", status="passed") == 5
    assert abs(_one(fam, "last_run_timestamp_seconds") - time.time()) < 120


def test_an_interrupted_run_written_by_the_guardian_has_metrics_too(tmp_path):
    doc = {
        "dest": str(tmp_path / "reports"),
        "suite": "pypi_ops.pypiserver",
        "properties": {"target": "local"},
        "results": [_r("deploy", priority="setup"), _r("connection")],
        "current": "upload",
        "current_priority": "p0",
        "current_since": time.time() - 3,
        "plan": [{"id": "connection", "priority": "p0"}, {"id": "upload", "priority": "p0"}, {"id": "list"}],
    }
    paths = run_state.write_report(doc, "SIGTERM")
    fam = _parse(Path(paths["metrics"]).read_text())
    assert _one(fam, "run_success") == 0
    assert _one(fam, "test_status", test="upload", status="interrupted") == 1
    assert _one(fam, "test_status", test="list", status="not_run") == 1


# --- the figure names the metrics read are the ones the tests record ------------------------------------------


def _figure_names(task_file: str) -> set[str]:
    """Every key of a pypi_test_figures set_fact in a functional test's task file."""
    names: set[str] = set()

    def walk(node: t.Any) -> None:
        if isinstance(node, dict):
            figures = node.get("pypi_test_figures")
            if isinstance(figures, dict):
                names.update(figures)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((ROOT / "roles/functional_tests/tasks" / task_file).read_text()))
    return names


def test_the_figures_read_are_the_figures_recorded():
    load = _figure_names("load.yml")
    for short, _operation in metrics.OPERATIONS:
        for key, _percentile in metrics.LOAD_PERCENTILES:
            assert f"{short}_{key}_ms" in load
        assert f"{short}_ops_s" in load
    assert set(LOAD_FIGURES) <= load
    large = _figure_names("large_package.yml")
    assert {"size_mib", "upload_mib_s", "download_mib_s"} <= large
    assert (metrics.LOAD_TEST, metrics.LARGE_TEST) == ("load", "large_package")


# --- promtool: Prometheus's own Go parser and lint, and the alert rules of docs/monitoring.md ---------------------
# promtool parses with the same expfmt text parser as node_exporter's textfile collector and the Pushgateway.

PROMTOOL = shutil.which("promtool")
MONITORING_MD = ROOT / "docs" / "monitoring.md"
SERIES = '{instance="h",job="node",target="url",suite="s"}'
STEP = 900  # the schedule of the examples: every 15 minutes


def _promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool is missing: apt-get install prometheus (.ci/run installs it)"
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


@pytest.mark.parametrize("kind", ["passed", "failed-hostile-labels", "empty"])
def test_promtool_parses_and_lints_the_file_clean(tmp_path, kind):
    if kind == "passed":
        path = _write(tmp_path, _passed_run())
    elif kind == "empty":
        path = _write(tmp_path, [])
    else:
        hostile = [_r("deploy"), _r(HOSTILE, "failed", HOSTILE, reason=HOSTILE), *_passed_run()[1:]]
        path = _write(tmp_path, hostile, props={"target": HOSTILE}, suite=HOSTILE)
    proc = _promtool("check", "metrics", stdin=path.read_text())
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc


def test_promtool_finds_a_broken_file():
    """The check above can fail: a sample line cut in half (what a non-atomic write lets a reader see)."""
    text = metrics.metrics_text(report.normalize(_passed_run()), "suite", PROPS, STAMP)
    cut = text[: text.index('status="failed"} 0') + 5]
    assert _promtool("check", "metrics", stdin=cut).returncode != 0


def _alert_rules() -> dict[str, t.Any]:
    """The ```yaml block of docs/monitoring.md's "Alert rules" section."""
    section = MONITORING_MD.read_text().split("\n## Alert rules\n", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "docs/monitoring.md has no yaml block under ## Alert rules"
    return yaml.safe_load(block.group(1))


def _series(name: str, points: list[float | None]) -> dict[str, str]:
    """A promtool input series: one value per STEP, ``_`` where the file had no such sample."""
    values = " ".join("_" if p is None else str(int(p)) for p in points)
    return {"series": f"pypi_ops_verify_{name}{SERIES}", "values": values}


def _scenario(success: list[int], ran: list[bool] | None = None, start: int = 0) -> list[dict[str, str]]:
    """The series the textfile collector exports, scraped every STEP: success[i] is the result of the run at
    (start + i) * STEP (last_success only in a passing run's file); ran[i] False means no run then, the previous
    file still exported; no file at all before ``start``."""
    ran = ran or [True] * len(success)
    last_run: list[float | None] = [None] * start
    last_success: list[float | None] = [None] * start
    run_success: list[float | None] = [None] * start
    for i, (ok, did) in enumerate(zip(success, ran, strict=True), start=start):
        if did:
            last_run.append(i * STEP)
            last_success.append(i * STEP if ok else None)
            run_success.append(ok)
        else:
            last_run.append(last_run[-1])
            last_success.append(last_success[-1])
            run_success.append(run_success[-1])
    series = [_series("last_run_timestamp_seconds", last_run), _series("run_success", run_success)]
    if any(v is not None for v in last_success):
        series.append(_series("last_success_timestamp_seconds", last_success))
    return series


LABELS = {"instance": "h", "job": "node", "target": "url", "suite": "s"}


def _expect(alert: str, when: str, fires: bool, severity: str, labels: dict[str, str] = LABELS) -> dict[str, t.Any]:
    return {
        "eval_time": when,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": dict(labels, severity=severity)}] if fires else [],
    }


def test_the_alert_rules_of_docs_monitoring_md(tmp_path):
    rules = _alert_rules()
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    checked = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert {"PypiIndexVerificationFailing", "PypiIndexNoSuccessfulRun"} <= set(names)
    for group in rules["groups"]:  # promtool test rules compares annotations too; they are checked above
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "plain.yml").write_text(yaml.safe_dump(rules))
    no = "PypiIndexNoSuccessfulRun"
    failing, stopped = "PypiIndexVerificationFailing", "PypiIndexVerificationNotRunning"
    tests = [
        {  # passed for the first hour, failing since: no success for 2 h at 3h00 (the last one was at 1h00)
            "interval": "15m",
            "input_series": _scenario([1] * 5 + [0] * 12),
            "alert_rule_test": [
                _expect(failing, "45m", False, "page"),
                _expect(failing, "1h20m", True, "page"),
                _expect(no, "2h50m", False, "page"),
                _expect(no, "3h10m", True, "page"),
                _expect(stopped, "4h", False, "ticket"),
            ],
        },
        {  # set up at 3h00 and never passed: no last_success series at all; fires 2 h after the first run
            "interval": "15m",
            "input_series": _scenario([0] * 12, start=12),
            "alert_rule_test": [
                _expect(failing, "2h", False, "page"),
                _expect(failing, "3h05m", True, "page"),
                _expect(no, "3h05m", False, "page"),
                _expect(no, "4h50m", False, "page"),
                _expect(no, "5h10m", True, "page"),
            ],
        },
        {  # failed for an hour, then passed again: never 2 h without a success
            "interval": "15m",
            "input_series": _scenario([1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
            "alert_rule_test": [
                _expect(failing, "1h", True, "page"),
                _expect(failing, "2h", False, "page"),
                *(_expect(no, f"{h}h{m}m", False, "page") for h in range(4) for m in (5, 35)),
            ],
        },
        {  # the schedule stopped after a passing run at 1h00; its file is still exported
            "interval": "15m",
            "input_series": _scenario([1] * 17, ran=[True] * 5 + [False] * 12),
            "alert_rule_test": [
                _expect(failing, "3h", False, "page"),
                _expect(stopped, "1h40m", False, "ticket"),
                _expect(stopped, "1h50m", True, "ticket"),
                _expect(no, "2h50m", False, "page"),
                _expect(no, "3h10m", True, "page"),
            ],
        },
        {  # nothing exported at all
            "interval": "15m",
            "input_series": [{"series": 'up{job="node",instance="h"}', "values": "1x12"}],
            "alert_rule_test": [
                _expect("PypiIndexVerificationMetricsMissing", "50m", False, "ticket", {}),
                _expect("PypiIndexVerificationMetricsMissing", "1h10m", True, "ticket", {}),
            ],
        },
    ]
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["plain.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    proc = _promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
