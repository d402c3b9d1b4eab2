# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test results -> JUnit XML, a Markdown summary and the plain table printed at the end of a play."""

from __future__ import annotations

import os
import typing as t
import xml.etree.ElementTree as ET

STATUSES = ("passed", "failed", "skipped")


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
                "figures": r.get("figures") or {},
            }
        )
    return out


def counts(results: list[dict[str, t.Any]]) -> dict[str, int]:
    c = {s: 0 for s in STATUSES}
    for r in results:
        c[r["status"]] += 1
    c["total"] = len(results)
    return c


def figures_text(figures: dict[str, t.Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in figures.items())


def junit_xml(results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any]) -> bytes:
    c = counts(results)
    total_time = sum(r["duration"] for r in results)
    suites = ET.Element(
        "testsuites",
        name=suite,
        tests=str(c["total"]),
        failures=str(c["failed"]),
        skipped=str(c["skipped"]),
        time=f"{total_time:.3f}",
    )
    ts = ET.SubElement(
        suites,
        "testsuite",
        name=suite,
        tests=str(c["total"]),
        failures=str(c["failed"]),
        errors="0",
        skipped=str(c["skipped"]),
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
        if r["status"] == "failed":
            node = ET.SubElement(case, "failure", message=r["reason"][:1000], type="failure")
            node.text = r["reason"]
        elif r["status"] == "skipped":
            ET.SubElement(case, "skipped", message=r["reason"][:1000])
        if r["status"] == "passed" or r["figures"]:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                x for x in (r["reason"] if r["status"] == "passed" else "", figures_text(r["figures"])) if x
            )
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_md(results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any]) -> str:
    c = counts(results)
    verdict = "FAILED" if c["failed"] else "PASSED"
    lines = [f"# {suite}: {verdict}", ""]
    for key, value in properties.items():
        lines.append(f"- **{key}**: {value}")
    lines += [
        f"- **result**: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped",
        "",
        "| test | priority | result | time (s) | reason | figures |",
        "|---|---|---|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['id']} | {r['priority']} | {r['status'].upper()} | {r['duration']:.2f} | "
            f"{_md_cell(r['reason'])} | {_md_cell(figures_text(r['figures']))} |"
        )
    return "\n".join(lines) + "\n"


def text_table(results: list[dict[str, t.Any]]) -> list[str]:
    """Fixed-width rows for the play output."""
    width = max([len(r["id"]) for r in results] + [4])
    rows = [f"{'test'.ljust(width)}  result   time(s)  reason"]
    for r in results:
        reason = r["reason"]
        if r["figures"]:
            reason = f"{reason} [{figures_text(r['figures'])}]" if reason else f"[{figures_text(r['figures'])}]"
        rows.append(f"{r['id'].ljust(width)}  {r['status'].upper():<7}  {r['duration']:7.2f}  {reason}")
    c = counts(results)
    rows.append(f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
    return rows


def write(dest: str, results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any]) -> dict[str, str]:
    os.makedirs(dest, exist_ok=True)
    paths = {"junit": os.path.join(dest, "junit.xml"), "summary": os.path.join(dest, "summary.md")}
    with open(paths["junit"], "wb") as handle:
        handle.write(junit_xml(results, suite, properties))
    with open(paths["summary"], "w", encoding="utf-8") as handle:
        handle.write(summary_md(results, suite, properties))
    return paths
