# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""metrics.prom: a run's results in the OpenMetrics text format, for node_exporter's textfile collector or a
Pushgateway (docs/monitoring.md).

Made from the same normalized results as the other report files. Design:

- every family is a gauge (a run's figures are snapshots, not monotonic counters), so no name ends in ``_total``
  and the same file is valid OpenMetrics and valid Prometheus text format 0.0.4 - the format node_exporter's
  textfile collector and the Pushgateway parse, which read ``# UNIT`` and ``# EOF`` as comments;
- a test's status is one series per possible status, 1 for the status it has and 0 for the others (the OpenMetrics
  StateSet encoding, written as a gauge for the 0.0.4 parsers): ``..._test_status{status="failed"} == 1`` selects
  the failed tests, and a test's series never change their label set from run to run;
- labels: ``target`` and ``suite`` on every series, plus ``test``, ``priority``, ``status``, ``operation`` and
  ``percentile`` (50, 95, 99) where they apply (not ``quantile``: Prometheus keeps it for summaries, and
  ``promtool check metrics`` flags it on a gauge). Never a URL, a run id, a reason or any other free text: the
  cardinality stays bounded by the plan and nothing secret can reach a label. Label values are escaped all the
  same;
- base units: seconds (durations to the millisecond, latencies to the microsecond), and bytes per second for the
  large package (its MiB/s figure, rounded to 0.1 by the test, times 1048576);
- the load and large_package figures only from a test that passed, as report.html draws them;
- ``..._last_success_timestamp_seconds`` only in the file of a run that passed: one run cannot know when an earlier
  one succeeded, so "no success for 2 h" is a PromQL question (max_over_time, docs/monitoring.md).
"""

from __future__ import annotations

import datetime
import math
import os
import tempfile
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.report import STATUSES, counts, verdict_of

PREFIX = "pypi_ops_verify_"
METRICS_FILE = "metrics.prom"
FILE_MODE = 0o644
LOAD_TEST = "load"
LARGE_TEST = "large_package"
LOAD_PERCENTILES = (("p50", "50"), ("p95", "95"), ("p99", "99"))
OPERATIONS = (("up", "upload"), ("down", "download"))
MIB = 1048576
DEADLINE_CUT = "not run: the run deadline"  # the reason of a test the run deadline kept from running (report role)

Labels = dict[str, str]


class Family:
    """One metric family: a gauge with its help, optional unit and samples (labels, value)."""

    def __init__(self, name: str, help_text: str, unit: str = "") -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.unit = unit
        self.samples: list[tuple[Labels, float]] = []

    def add(self, labels: Labels, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            self.samples.append((labels, value))

    def lines(self) -> list[str]:
        if not self.samples:
            return []
        out = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} gauge"]
        if self.unit:
            out.append(f"# UNIT {self.name} {self.unit}")
        for labels, value in self.samples:
            pairs = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
            out.append(f"{self.name}{{{pairs}}} {number(value)}" if pairs else f"{self.name} {number(value)}")
        return out


def escape_label(value: str) -> str:
    """A label value as both text formats quote it: backslash, double quote and line feed escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text: one line; backslash and line feed escaped (the quote is avoided: 0.0.4 does not unescape it)."""
    return " ".join(str(text).replace("\\", "\\\\").replace('"', "'").split())


def number(value: float) -> str:
    """An integral value without a fraction (``1``, ``1764931200``), else Python's shortest round-trip repr."""
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def figure(value: t.Any) -> float | None:
    """A recorded figure as a finite float (numbers or numeric strings); None for anything else, booleans included."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number_ = float(value)
    except (TypeError, ValueError):
        return None
    return number_ if math.isfinite(number_) else None


def epoch(generated_at: str | None) -> float:
    """``YYYY-MM-DDTHH:MM:SSZ`` (the report's generated_at) as Unix seconds; now when absent or malformed."""
    try:
        stamp = datetime.datetime.strptime(str(generated_at), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return float(int(time.time()))
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


def run_passed(results: list[dict[str, t.Any]]) -> bool:
    """True only when the run proves the index works: no test failed or was interrupted, the run deadline cut none,
    and at least one test other than deploy passed (a run that ran nothing, or skipped everything, proves nothing).
    """
    if verdict_of(counts(results)) != "passed":
        return False
    if any(r["status"] == "skipped" and r["reason"].startswith(DEADLINE_CUT) for r in results):
        return False
    return any(r["status"] == "passed" and r["id"] != "deploy" for r in results)


def _last(results: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """One result per test id (the last), in first-seen order: duplicate series would make the file invalid."""
    by_id: dict[str, dict[str, t.Any]] = {}
    for r in results:
        by_id[r["id"]] = r
    return list(by_id.values())


def _passed_figures(results: list[dict[str, t.Any]], test_id: str) -> dict[str, t.Any]:
    found = [r for r in results if r["id"] == test_id]
    return found[-1]["figures"] if found and found[-1]["status"] == "passed" else {}


def families(
    results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], generated_at: str | None
) -> list[Family]:
    """Every family of metrics.prom, from normalized results (report.normalize)."""
    base = {"target": str((properties or {}).get("target") or "unknown"), "suite": str(suite)}
    passed = run_passed(results)
    stamp = epoch(generated_at)
    c = counts(results)

    success = Family("run_success", "1 when the run passed (no test failed, at least one passed), else 0.")
    success.add(dict(base), 1 if passed else 0)
    last_run = Family("last_run_timestamp_seconds", "When the run wrote its report, in Unix seconds.", "seconds")
    last_run.add(dict(base), stamp)
    last_success = Family(
        "last_success_timestamp_seconds",
        "When the run wrote its report, in Unix seconds; only present in the file of a run that passed.",
        "seconds",
    )
    if passed:
        last_success.add(dict(base), stamp)
    duration = Family("run_duration_seconds", "Sum of the tests' durations in the run.", "seconds")
    duration.add(dict(base), round(sum(r["duration"] for r in results), 3))
    tests = Family("tests", "Number of tests of the run by status.")
    for status in STATUSES:
        tests.add(dict(base, status=status), c[status])

    status_family = Family("test_status", "1 for the status the test ended with, 0 for the other statuses.")
    test_duration = Family("test_duration_seconds", "How long the test took.", "seconds")
    for r in _last(results):
        labels = dict(base, test=r["id"], priority=r["priority"])
        for status in STATUSES:
            status_family.add(dict(labels, status=status), 1 if r["status"] == status else 0)
        test_duration.add(labels, round(r["duration"], 3))

    load = _passed_figures(results, LOAD_TEST)
    latency = Family("load_latency_seconds", "Latency percentile of the load test's requests.", "seconds")
    ops = Family("load_operations_per_second", "Requests per second the load test completed.")
    for short, operation in OPERATIONS:
        for key, percentile in LOAD_PERCENTILES:
            millis = figure(load.get(f"{short}_{key}_ms"))
            if millis is not None:
                latency.add(dict(base, operation=operation, percentile=percentile), round(millis / 1000.0, 6))
        ops.add(dict(base, operation=operation), figure(load.get(f"{short}_ops_s")))

    large = _passed_figures(results, LARGE_TEST)
    throughput = Family(
        "large_package_throughput_bytes_per_second",
        "Upload and download rate of the large package (its MiB/s figure times 1048576).",
    )
    for _short, operation in OPERATIONS:
        mib_s = figure(large.get(f"{operation}_mib_s"))
        throughput.add(dict(base, operation=operation), None if mib_s is None else round(mib_s * MIB))
    size = Family("large_package_size_bytes", "Size of the large package's wheel.", "bytes")
    size_mib = figure(large.get("size_mib"))
    size.add(dict(base), None if size_mib is None else round(size_mib * MIB))

    return [
        success,
        last_run,
        last_success,
        duration,
        tests,
        status_family,
        test_duration,
        latency,
        ops,
        throughput,
        size,
    ]


def metrics_text(
    results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], generated_at: str | None = None
) -> str:
    """The content of metrics.prom: families without samples are left out, ``# EOF`` ends it."""
    lines: list[str] = []
    for family in families(results, suite, properties, generated_at):
        lines += family.lines()
    return "\n".join(lines + ["# EOF"]) + "\n"


def write_atomic(path: str, text: str, mode: int = FILE_MODE) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and os.replace: a reader (the
    textfile collector) sees the old file or the new one, never part of one. The temporary name does not end in
    .prom, so a collector reading the directory skips it; it is removed when anything fails."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write(
    dest: str,
    results: list[dict[str, t.Any]],
    suite: str,
    properties: dict[str, t.Any],
    generated_at: str | None = None,
) -> str:
    """Write ``dest``/metrics.prom atomically; return its path."""
    path = os.path.join(dest, METRICS_FILE)
    write_atomic(path, metrics_text(results, suite, properties, generated_at))
    return path
