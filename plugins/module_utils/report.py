# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test results -> JUnit XML, a Markdown summary, results.json, a self-contained report.html (drawn by
``report_html``), metrics.prom (OpenMetrics, written by ``metrics``) and the plain table printed at the end of a
play.

Figures are the measured values a test recorded. Scalars (numbers, strings, booleans) appear everywhere;
lists and dicts (the load test's latency histograms) only in results.json and as charts in report.html,
so they never clutter junit.xml, summary.md or the play output.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import typing as t
import xml.etree.ElementTree as ET

# interrupted: the run stopped during this test (SIGTERM, Ctrl-C, a crash); not_run: the run stopped before it.
STATUSES = ("passed", "failed", "skipped", "interrupted", "not_run")
JSON_FORMAT_VERSION = 1


def normalize(results: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    out = []
    for r in results:
        status = str(r.get("status", "failed"))
        out.append(
            {
                "id": str(r.get("id", "unnamed")),
                "priority": str(r.get("priority", "")),
                "status": status if status in STATUSES else "failed",
                "duration": float(r.get("duration") or 0.0),
                "reason": " ".join(str(r.get("reason") or "").split()),
                "figures": dict(r["figures"]) if isinstance(r.get("figures"), dict) else {},
            }
        )
    return out


def counts(results: list[dict[str, t.Any]]) -> dict[str, int]:
    c = {s: 0 for s in STATUSES}
    for r in results:
        c[r["status"]] += 1
    c["total"] = len(results)
    return c


def is_scalar(value: t.Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def scalar_figures(figures: dict[str, t.Any]) -> dict[str, t.Any]:
    """The figures that read as one value; lists and dicts are left to results.json and report.html."""
    return {k: v for k, v in figures.items() if is_scalar(v)}


def figures_text(figures: dict[str, t.Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scalar_figures(figures).items())


def result_line(c: dict[str, int]) -> str:
    """ "17 passed, 1 failed, 3 skipped", with the interrupted and not-run counts when there are any."""
    line = f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
    if c.get("interrupted"):
        line += f", {c['interrupted']} interrupted"
    if c.get("not_run"):
        line += f", {c['not_run']} not run"
    return line


def verdict_of(c: dict[str, int]) -> str:
    """failed, interrupted, passed or empty."""
    if c.get("interrupted"):
        return "interrupted"
    if c["failed"]:
        return "failed"
    return "passed" if c["total"] else "empty"


def junit_xml(
    results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], diagnostics: str = ""
) -> bytes:
    """``diagnostics``: the bundle's index (relative to the report), named in each failed or interrupted testcase."""
    c = counts(results)
    total_time = sum(r["duration"] for r in results)
    suites = ET.Element(
        "testsuites",
        name=suite,
        tests=str(c["total"]),
        failures=str(c["failed"]),
        errors=str(c["interrupted"]),
        skipped=str(c["skipped"] + c["not_run"]),
        time=f"{total_time:.3f}",
    )
    ts = ET.SubElement(
        suites,
        "testsuite",
        name=suite,
        tests=str(c["total"]),
        failures=str(c["failed"]),
        errors=str(c["interrupted"]),
        skipped=str(c["skipped"] + c["not_run"]),
        time=f"{total_time:.3f}",
    )
    if properties:
        props = ET.SubElement(ts, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", name=str(key), value=str(value))
    for r in results:
        case = ET.SubElement(
            ts, "testcase", name=r["id"], classname=f"{suite}.{r['priority'] or 'tests'}", time=f"{r['duration']:.3f}"
        )
        see = f"\ndiagnostics: {diagnostics}" if diagnostics else ""
        if r["status"] == "failed":
            node = ET.SubElement(case, "failure", message=r["reason"][:1000], type="failure")
            node.text = r["reason"] + see
        elif r["status"] == "interrupted":
            node = ET.SubElement(case, "error", message=r["reason"][:1000], type="interrupted")
            node.text = r["reason"] + see
        elif r["status"] in ("skipped", "not_run"):
            ET.SubElement(case, "skipped", message=r["reason"][:1000])
        if r["status"] == "passed" or scalar_figures(r["figures"]):
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                x for x in (r["reason"] if r["status"] == "passed" else "", figures_text(r["figures"])) if x
            )
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_md(results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], diagnostics: str = "") -> str:
    c = counts(results)
    verdict = {"interrupted": "INTERRUPTED", "failed": "FAILED"}.get(verdict_of(c), "PASSED")
    lines = [f"# {suite}: {verdict}", ""]
    for key, value in properties.items():
        lines.append(f"- **{key}**: {value}")
    lines += [
        f"- **result**: {result_line(c)}",
        *([f"- Diagnostics: {diagnostics}"] if diagnostics else []),
        "",
        "| test | priority | result | time (s) | reason | figures |",
        "|---|---|---|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['id']} | {r['priority']} | {r['status'].upper()} | {r['duration']:.2f} | "
            f"{_md_cell(r['reason'])} | {_md_cell(figures_text(r['figures']))} |"
        )
    lines += _md_sections(results)
    return "\n".join(lines) + "\n"


def find(results: list[dict[str, t.Any]], test_id: str) -> dict[str, t.Any] | None:
    """The last result of ``test_id``; None when it did not run."""
    found = [r for r in results if r["id"] == test_id]
    return found[-1] if found else None


def table_rows(
    results: list[dict[str, t.Any]], test_id: str, figure: str, keys: tuple[str, ...]
) -> list[dict[str, str]]:
    """The rows a test recorded as the list figure ``figure``, each as {key: text}; empty when it did not run."""
    found = find(results, test_id)
    rows = found["figures"].get(figure) if found else None
    if not isinstance(rows, list):
        return []
    return [{k: str(row.get(k, "")) for k in keys} for row in rows if isinstance(row, dict)]


def _pair_time(row: dict[str, t.Any]) -> str:
    """``upload 1.2 s + install 3.4 s`` (what ran of a client pair), or empty."""
    parts = []
    for key, what in (("upload_seconds", "upload"), ("install_seconds", "install")):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{what} {value:.2f} s")
    return " + ".join(parts)


def client_matrix(results: list[dict[str, t.Any]]) -> list[dict[str, str]]:
    """The clients test's rows (upload client, install client, status, time, reason); empty when it did not run."""
    found = find(results, "clients")
    rows = found["figures"].get("matrix") if found else None
    if not isinstance(rows, list):
        return []
    keys = ("upload", "install", "status", "reason")
    return [dict({k: str(row.get(k, "")) for k in keys}, time=_pair_time(row)) for row in rows if isinstance(row, dict)]


def conformance_findings(results: list[dict[str, t.Any]]) -> list[dict[str, str]]:
    """The index_conformance test's findings (check, pep, status, detail); empty when it did not run."""
    return table_rows(results, "index_conformance", "findings", ("check", "pep", "status", "detail"))


def _md_sections(results: list[dict[str, t.Any]]) -> list[str]:
    lines: list[str] = []
    matrix = client_matrix(results)
    if matrix:
        lines += ["", "## Client matrix", "", "| upload | install | result | time | reason |", "|---|---|---|---|---|"]
        lines += [
            f"| {_md_cell(r['upload'])} | {_md_cell(r['install'])} | {r['status'].upper()} | {_md_cell(r['time'])} "
            f"| {_md_cell(r['reason'])} |"
            for r in matrix
        ]
    findings = conformance_findings(results)
    if findings:
        lines += ["", "## Index conformance", "", "| check | PEP | finding | detail |", "|---|---|---|---|"]
        lines += [
            f"| {_md_cell(r['check'])} | {_md_cell(r['pep'])} | {r['status'].upper()} | {_md_cell(r['detail'])} |"
            for r in findings
        ]
    return lines


def text_table(results: list[dict[str, t.Any]]) -> list[str]:
    """Fixed-width rows for the play output."""
    width = max([len(r["id"]) for r in results] + [4])
    rows = [f"{'test'.ljust(width)}  result   time(s)  reason"]
    for r in results:
        reason = r["reason"]
        if scalar_figures(r["figures"]):
            reason = f"{reason} [{figures_text(r['figures'])}]" if reason else f"[{figures_text(r['figures'])}]"
        rows.append(f"{r['id'].ljust(width)}  {r['status'].upper():<7}  {r['duration']:7.2f}  {reason}")
    c = counts(results)
    rows.append(result_line(c))
    return rows


# --- results.json --------------------------------------------------------------------------------------------


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: t.Any) -> t.Any:
    """JSON-safe copy: str keys, lists for sequences, None for NaN/inf, str() for anything unknown."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def results_document(
    results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], generated_at: str
) -> dict[str, t.Any]:
    """The content of results.json; keys are always in this order."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "suite": suite,
        "generated_at": generated_at,
        "properties": _plain(dict(properties)),
        "counts": counts(results),
        "duration": round(sum(r["duration"] for r in results), 3),
        "tests": [
            {
                "id": r["id"],
                "priority": r["priority"],
                "status": r["status"],
                "duration": _plain(r["duration"]),
                "reason": r["reason"],
                "figures": _plain(r["figures"]),
            }
            for r in results
        ],
    }


def results_json(results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], generated_at: str) -> str:
    doc = results_document(results, suite, properties, generated_at)
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --- files ---------------------------------------------------------------------------------------------------

REPORT_FILES = {"junit": "junit.xml", "summary": "summary.md", "json": "results.json", "html": "report.html"}


def write(
    dest: str,
    results: list[dict[str, t.Any]],
    suite: str,
    properties: dict[str, t.Any],
    generated_at: str | None = None,
    diagnostics: str = "",
) -> dict[str, str]:
    """Write every report file into dest; return {kind: path} (junit, summary, json, html, metrics)."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import metrics, report_html  # both import this

    os.makedirs(dest, exist_ok=True)
    stamp = generated_at or utc_now()
    paths = {kind: os.path.join(dest, name) for kind, name in REPORT_FILES.items()}
    with open(paths["junit"], "wb") as handle:
        handle.write(junit_xml(results, suite, properties, diagnostics))
    with open(paths["summary"], "w", encoding="utf-8") as handle:
        handle.write(summary_md(results, suite, properties, diagnostics))
    with open(paths["json"], "w", encoding="utf-8") as handle:
        handle.write(results_json(results, suite, properties, stamp))
    with open(paths["html"], "w", encoding="utf-8") as handle:
        handle.write(report_html.report_html(results, suite, properties, stamp, diagnostics))
    paths["metrics"] = metrics.write(dest, results, suite, properties, stamp)
    return paths
