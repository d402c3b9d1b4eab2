# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html: the test results of ``report`` as one self-contained page, with its SVG charts (the durations, the
load test's latency histogram, the large package's throughput).

One file, no external references: inline CSS, inline SVG (no xmlns needed inside HTML), no script, no links.
Everything that comes from results or properties goes through _e().
"""

from __future__ import annotations

import html
import math
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.report import (
    STATUSES,
    client_matrix,
    conformance_findings,
    counts,
    figures_text,
    find,
    result_line,
    verdict_of,
)

LOAD_TEST = "load"
LARGE_TEST = "large_package"
COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "skipped": "#8c959f",
    "interrupted": "#b26a00",
    "not_run": "#d0d7de",
    "upload": "#1f6feb",
    "download": "#e36209",
}
CHART_WIDTH = 760

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
background:#fff;max-width:1040px;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin:.2rem 0 .8rem}h2{font-size:1.2rem;margin:1.8rem 0 .6rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;
vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.reason,td.figures{overflow-wrap:anywhere}td.figures{font-size:12px;color:#57606a}
table.props{width:auto}table.props th{font-weight:600}
.badge{display:inline-block;color:#fff;font-weight:600;font-size:12px;border-radius:4px;padding:.05rem .45rem}
.badge.passed{background:#2e7d32}.badge.failed{background:#c62828}.badge.skipped{background:#8c959f}
.badge.interrupted{background:#b26a00}.badge.not_run{background:#8c959f}
.badge.empty{background:#57606a}.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.warn{background:#b26a00}.badge.skip{background:#8c959f}
tr.failed td{background:#fff1f0}tr.interrupted td{background:#fff8e5}tr.skipped td,tr.not_run td{color:#57606a}
.note{color:#57606a;font-style:italic;margin:.4rem 0}.caption{color:#57606a;font-size:12px;margin:.3rem 0}
svg{display:block;max-width:100%;height:auto}svg text{font-family:system-ui,sans-serif;font-size:12px;fill:#1f2328}
svg .small{font-size:10px}svg .axis{stroke:#57606a;stroke-width:1}svg .grid{stroke:#d0d7de;stroke-width:1}
footer{margin:2rem 0 1rem;color:#57606a;font-size:12px}
"""


def _e(value: t.Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float) -> str:
    """Short number: no trailing zeros, at most 2 decimals."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _number(value: t.Any) -> float | None:
    """A finite, non-negative float from a figure (numbers or numeric strings), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _histogram(value: t.Any) -> list[tuple[float | None, int]] | None:
    """[(upper edge in ms or None for +Inf, count)] from a figure, or None when it is not a usable histogram."""
    if not isinstance(value, list) or not value:
        return None
    out: list[tuple[float | None, int]] = []
    for item in value:
        if not isinstance(item, dict) or isinstance(item.get("count"), bool):
            return None
        count = _number(item.get("count"))
        raw = item.get("le_ms")
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("+inf", "inf")):
            edge = None
        else:
            edge = _number(raw)
            if edge is None:
                return None
        if count is None or count != int(count):
            return None
        out.append((edge, int(count)))
    edges = [edge for edge, _count in out]
    if len(set(edges)) != len(edges):
        return None
    return out


def _why_not(result: dict[str, t.Any] | None, test_id: str, what: str) -> str:
    """One line saying why there is no chart for a test that did not pass."""
    if result is None:
        return f"No {what}: the {test_id} test did not run in this run."
    if result["status"] == "skipped":
        return f"No {what}: the {test_id} test was skipped ({result['reason'] or 'no reason given'})."
    if result["status"] == "failed":
        return f"No {what}: the {test_id} test failed (its reason is in the table above)."
    return f"No {what}: the {test_id} test did not pass."


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
        f"<title>{_e(label)}</title>"
    )


def _legend(items: list[tuple[str, str]], x: float, y: float) -> list[str]:
    parts = []
    for name, colour in items:
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y:.1f}">{_e(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def _short(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _nice_step(maximum: float, ticks: int = 4) -> float:
    """A 1/2/5 x 10^k step so that about `ticks` steps cover maximum."""
    raw = max(maximum, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def duration_chart(results: list[dict[str, t.Any]]) -> str:
    if not results:
        return _note("No durations to draw: no test ran.")
    label_w, value_w, row, top = 190, 80, 22, 28
    bar_max = CHART_WIDTH - label_w - value_w
    longest = max(r["duration"] for r in results)
    scale = bar_max / longest if longest > 0 else 0.0
    height = top + row * len(results) + 8
    parts = [_svg_open(CHART_WIDTH, height, "Duration of each test in seconds, coloured by result")]
    parts += _legend([(s, COLOURS[s]) for s in STATUSES], label_w, 14)
    for i, r in enumerate(results):
        y = top + i * row
        width = r["duration"] * scale
        if r["duration"] > 0:
            width = max(width, 1.0)
        tip = f"{r['id']}: {r['status']}, {r['duration']:.2f} s"
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_e(_short(r["id"]))}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" fill="{COLOURS[r["status"]]}">'
            f"<title>{_e(tip)}</title></rect>"
        )
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 15}">{r["duration"]:.2f} s</text>')
    parts.append(f'<line class="axis" x1="{label_w}" y1="{top}" x2="{label_w}" y2="{height - 8}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _bucket_label(edge: float | None, previous: float | None) -> str:
    if edge is None:
        return f">{_fmt(previous)}" if previous is not None else "all"
    return f"\u2264{_fmt(edge)}"


def _passed_figures(results: list[dict[str, t.Any]], test_id: str, what: str) -> dict[str, t.Any] | str:
    """The figures of ``test_id`` when it passed; else the note saying why there is no ``what``."""
    found = find(results, test_id)
    if found is None or found["status"] != "passed":
        return _note(_why_not(found, test_id, what))
    figures: dict[str, t.Any] = found["figures"]
    return figures


def latency_chart(results: list[dict[str, t.Any]]) -> str:
    what = "latency distribution"
    figures = _passed_figures(results, LOAD_TEST, what)
    if isinstance(figures, str):
        return figures
    series = [
        (name, COLOURS[name], hist)
        for name, hist in (
            ("upload", _histogram(figures.get("up_hist"))),
            ("download", _histogram(figures.get("down_hist"))),
        )
        if hist is not None
    ]
    if not series:
        return _note(f"No {what}: the {LOAD_TEST} test recorded no latency histogram.")
    if not any(count for _name, _colour, hist in series for _edge, count in hist):
        return _note(f"No {what}: the {LOAD_TEST} test recorded no successful operation.")
    edges = sorted(
        {edge for _name, _colour, hist in series for edge, _count in hist}, key=lambda e: (e is None, e or 0.0)
    )
    by_edge = [dict(hist) for _name, _colour, hist in series]
    top_count = max(count for _name, _colour, hist in series for _edge, count in hist)
    step = _nice_step(top_count)
    step = max(1.0, float(math.ceil(step)))
    y_max = step * math.ceil(top_count / step)
    left, right, top, bottom = 48, 10, 30, 52
    height = 300
    plot_w, plot_h = CHART_WIDTH - left - right, height - top - bottom
    group = plot_w / len(edges)
    bar_w = group * 0.8 / len(series)
    parts = [_svg_open(CHART_WIDTH, height, "Load test latency histogram: operations per latency bucket (ms)")]
    parts += _legend([(name, colour) for name, colour, _hist in series], left, 14)
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + plot_h - tick / y_max * plot_h
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
        tick += step
    previous: float | None = None
    for i, edge in enumerate(edges):
        x0 = left + i * group + group * 0.1
        for j, (name, colour, _hist) in enumerate(series):
            count = by_edge[j].get(edge, 0)
            h = count / y_max * plot_h
            x = x0 + j * bar_w
            label = _bucket_label(edge, previous)
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{_e(f'{name} {label} ms: {count}')}</title></rect>"
            )
            if count:
                parts.append(
                    f'<text class="small" x="{x + bar_w / 2:.1f}" y="{top + plot_h - h - 3:.1f}" '
                    f'text-anchor="middle">{count}</text>'
                )
        parts.append(
            f'<text class="small" x="{left + i * group + group / 2:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="middle">{_e(_bucket_label(edge, previous))}</text>'
        )
        previous = edge if edge is not None else previous
    parts.append(f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 10}" text-anchor="middle">'
        "latency (ms, upper edge of each bucket)</text>"
    )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">operations</text>'
    )
    parts.append("</svg>")
    captions = []
    for name, prefix in (("upload", "up"), ("download", "down")):
        hist = dict(next((h for n, _colour, h in series if n == name), []))
        stats = ", ".join(
            f"{pct} {_e(figures[f'{prefix}_{pct}_ms'])} ms"
            for pct in ("p50", "p95", "p99")
            if f"{prefix}_{pct}_ms" in figures
        )
        if hist:
            ops = f"{sum(hist.values())} successful {name}s"
            captions.append(f"{_e(ops)}{': ' + stats if stats else ''}")
    return "".join(parts) + f'<p class="caption">{"; ".join(captions)}</p>'


def throughput_chart(results: list[dict[str, t.Any]]) -> str:
    what = "throughput chart"
    figures = _passed_figures(results, LARGE_TEST, what)
    if isinstance(figures, str):
        return figures
    values = [
        ("upload", _number(figures.get("upload_mib_s"))),
        ("download", _number(figures.get("download_mib_s"))),
    ]
    if any(v is None for _label, v in values):
        return _note(f"No {what}: the {LARGE_TEST} test recorded no upload_mib_s and download_mib_s.")
    label_w, value_w, row, top = 90, 110, 30, 8
    bar_max = CHART_WIDTH - label_w - value_w
    fastest = max(t.cast(float, v) for _label, v in values)
    scale = bar_max / fastest if fastest > 0 else 0.0
    height = top + row * len(values) + 8
    parts = [_svg_open(CHART_WIDTH, height, "Large package throughput in MiB/s, upload and download")]
    for i, (name, value) in enumerate(values):
        number = t.cast(float, value)
        y = top + i * row
        width = max(number * scale, 1.0 if number > 0 else 0.0)
        parts.append(f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end">{name}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 5}" width="{width:.1f}" height="{row - 10}" fill="{COLOURS[name]}">'
            f"<title>{name}: {_fmt(number)} MiB/s</title></rect>"
        )
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 19}">{_fmt(number)} MiB/s</text>')
    parts.append(f'<line class="axis" x1="{label_w}" y1="{top}" x2="{label_w}" y2="{height - 8}"/>')
    parts.append("</svg>")
    size = _number(figures.get("size_mib"))
    caption = f"{_fmt(size)} MiB wheel, uploaded with twine and downloaded streamed" if size is not None else ""
    return "".join(parts) + (f'<p class="caption">{_e(caption)}</p>' if caption else "")


def _html_sections(results: list[dict[str, t.Any]]) -> list[str]:
    out: list[str] = []
    for title, rows, head in (
        ("Client matrix", client_matrix(results), ("upload", "install", "status", "time", "reason")),
        ("Index conformance", conformance_findings(results), ("check", "pep", "status", "detail")),
    ):
        if not rows:
            continue
        out += [
            f"<h2>{title}</h2>",
            "<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>",
        ]
        for r in rows:
            cells = []
            for h in head:
                if h == "status":
                    cells.append(f'<td><span class="badge {_e(r[h])}">{_e(r[h].upper())}</span></td>')
                else:
                    cells.append(f'<td class="reason">{_e(r[h])}</td>')
            out.append(f'<tr class="{_e(r["status"])}">' + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
    return out


def report_html(
    results: list[dict[str, t.Any]], suite: str, properties: dict[str, t.Any], generated_at: str, diagnostics: str = ""
) -> str:
    c = counts(results)
    verdict = verdict_of(c)
    verdict_text = {"failed": "FAILED", "passed": "PASSED", "empty": "NO TESTS", "interrupted": "INTERRUPTED"}[verdict]
    total_time = sum(r["duration"] for r in results)
    props = [(str(k), v) for k, v in properties.items()] + [
        ("result", result_line(c)),
        ("total time", f"{total_time:.2f} s"),
        ("generated", f"{generated_at} (UTC)"),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(suite)}: {verdict_text}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>{_e(suite)}: <span class="badge {verdict}">{verdict_text}</span></h1>',
        '<table class="props"><tbody>',
    ]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in props]
    if diagnostics:  # the failed run's bundle, relative to this file
        out.append(f'<tr><th>diagnostics</th><td><a href="{_e(diagnostics)}">{_e(diagnostics)}</a></td></tr>')
    out += ["</tbody></table>", "<h2>Tests</h2>"]
    if results:
        out.append(
            "<table><thead><tr><th>test</th><th>priority</th><th>result</th><th>time (s)</th><th>reason</th>"
            "<th>figures</th></tr></thead><tbody>"
        )
        for r in results:
            out.append(
                f'<tr class="{_e(r["status"])}"><td>{_e(r["id"])}</td><td>{_e(r["priority"])}</td>'
                f'<td><span class="badge {_e(r["status"])}">{_e(r["status"].upper())}</span></td>'
                f'<td class="num">{r["duration"]:.2f}</td><td class="reason">{_e(r["reason"])}</td>'
                f'<td class="figures">{_e(figures_text(r["figures"]))}</td></tr>'
            )
        out.append("</tbody></table>")
    else:
        out.append(_note("No test ran (check --tags/--skip-tags)."))
    out += _html_sections(results)
    out += [
        "<h2>Durations</h2>",
        duration_chart(results),
        "<h2>Load test: latency distribution</h2>",
        latency_chart(results),
        "<h2>Large package: throughput</h2>",
        throughput_chart(results),
        f"<footer>Written by pypi_ops.pypiserver test_report at {_e(generated_at)} (UTC). The same results are in "
        "results.json, junit.xml and summary.md next to this file.</footer>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"
