# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release cooldowns: do pip ``--uploaded-prior-to`` and uv ``--exclude-newer`` work against the index under test?

Both clients keep out files uploaded after a cut-off, by the PEP 700 ``upload-time`` the index gives in its PEP 691
JSON. With a cut-off after this run's upload the probe must install; with one before it (the run started after
that), nothing may. ``run`` makes the four installs (through ``pip_runner`` and ``uv_runner``) and reads what the
index says of the file; ``judge`` is a pure function of those outcomes.

Measured with pip 26.3 and uv 0.13.9 against pypiserver 2.4.2, which gives no upload time: pip stops with "Index
... does not provide upload-time metadata" and uv warns "... is missing an upload date" and drops the file, so with
any cut-off neither installs anything. That is the finding, a warning unless cooldowns are expected to work.
"""

from __future__ import annotations

import re
import sys
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import conformance as cf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import install, uv_runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

CLIENTS = ("pip", "uv")
OPTION = {"pip": "--uploaded-prior-to", "uv": "--exclude-newer"}
DEFAULT_SKEW = cf.DEFAULT_SKEW
# Outcomes of the later cut-off that any cut-off meets (measured: pip refuses an index without upload times whatever
# the cut-off, uv drops every file without one), so the earlier cut-off is not tried after them.
SAME_FOR_ANY_CUTOFF = ("no_upload_time", "unsupported", "missing")


def cutoffs(uploaded_after: float, now: float, skew: float = DEFAULT_SKEW) -> dict[str, str]:
    """The two cut-offs: ``before`` the upload (``uploaded_after``, a time known to precede it, less ``skew``) and
    ``after`` it (now plus ``skew``), as ISO 8601 UTC."""
    return {"before": cf.utc_text(uploaded_after - skew), "after": cf.utc_text(now + skew)}


def outcome(client: str, which: str, at: str, result: dict[str, t.Any] | None, error: t.Any = None) -> dict[str, t.Any]:
    """One install's outcome: installed (with the file) or not, and why not (``kind``) in one sentence (``msg``).

    ``kind``: None (installed), ``excluded``, ``no_upload_time``, ``unsupported`` (no such option), ``missing`` (the
    client is not installed) or ``error`` (any other failure). ``error`` is an ``install.InstallError``."""
    row: dict[str, t.Any] = {
        "client": client,
        "cutoff": which,
        "at": at,
        "installed": result is not None,
        "tried": True,
    }
    if result is not None:
        row.update(kind=None, filename=result.get("filename"), msg="")
        return row
    msg = getattr(error, "msg", None) or str(error or "failed")
    kind = (getattr(error, "details", {}) or {}).get("cutoff") or "error"
    if getattr(error, "missing", False):
        kind = "missing"
    first = re.sub(r"\s*Last lines of \w+'s output:\s*$", "", msg.split("\n", 1)[0])
    row.update(kind=kind, filename=None, msg=first)
    return row


def _phrase_no_time(client: str, after: dict[str, t.Any], before: dict[str, t.Any]) -> str:
    """What ``client`` does with a cut-off on an index without upload times (from what it did)."""
    option = f"{client} {OPTION[client]}"
    if not after["installed"] and after["kind"] == "no_upload_time":
        if client == "pip":
            return f'{option} refuses to install anything ("does not provide upload-time metadata")'
        return f'{option} drops every file without an upload date and installs nothing ("missing an upload date")'
    if not after["installed"] and after["kind"] == "excluded":
        return f"{option} finds no file before any cut-off and installs nothing"
    if after["installed"] and before["installed"]:
        return f"{option} ignores the cut-off and installs the newest file anyway, so no cooldown holds"
    if after["installed"]:
        return f"{option} installs with a cut-off after the upload and not before it"
    return f"{option} fails: {after['msg'].rstrip('.')}"


def judge(
    outcomes: list[dict[str, t.Any]], upload_time: str | None, expected: bool = False, requirement: str = "the probe"
) -> dict[str, t.Any]:
    """{status: pass|warn|fail|skip, reason, failures, finding} from the installs and the index's upload-time.

    ``upload_time`` is what the index says of the file (None: it gives none, or serves no JSON). With one, each
    client must install with the ``after`` cut-off and install nothing with the ``before`` one. Without one, what
    each client does is the finding: a warning, a failure with ``expected``."""
    by_client: dict[str, dict[str, dict[str, t.Any]]] = {}
    for row in outcomes:
        by_client.setdefault(row["client"], {})[row["cutoff"]] = row
    skipped, failures, broken, honoured = [], [], [], []
    for client in [c for c in CLIENTS if c in by_client] + sorted(set(by_client) - set(CLIENTS)):
        rows = by_client[client]
        after, before = rows.get("after"), rows.get("before")
        if after is None or before is None:
            failures.append(f"{client}: not every cut-off was tried")
            continue
        kinds = {after["kind"], before["kind"]}
        if "missing" in kinds:
            skipped.append(f"{client} is not installed")
            continue
        if "unsupported" in kinds:
            skipped.append(f"this {client} has no {OPTION[client]} ({(after if after['kind'] else before)['msg']})")
            continue
        option = f"{client} {OPTION[client]}"
        if upload_time is None:
            broken.append(_phrase_no_time(client, after, before))
            continue
        bad = []
        if not after["installed"]:
            bad.append(f"{option} {after['at']} (after the upload) did not install {requirement}: {after['msg']}")
        if before["installed"]:
            bad.append(
                f"{option} {before['at']} (before this run's upload) still installed {before['filename']}, which the "
                f"index says was uploaded at {upload_time}"
            )
        elif before["kind"] != "excluded":
            bad.append(f"{option} {before['at']} failed for another reason than the cut-off: {before['msg']}")
        if bad:
            failures.extend(b.rstrip(".") for b in bad)
        else:
            honoured.append(option)
    result: dict[str, t.Any] = {"failures": failures, "finding": None, "skipped": skipped}
    skip_note = f" ({'; '.join(skipped)})" if skipped else ""
    if failures:
        result.update(
            status="fail",
            reason=(
                f"release cut-offs do not work against the index: {'; '.join(failures)}; the index's PEP 700 "
                "upload-time must be the real upload time."
            ),
        )
        return result
    if broken:
        finding = (
            f"the index serves no upload-time (PEP 700): {'; '.join(broken)}; serve PEP 691 JSON with PEP 700 "
            "upload-time (a newer index server, or a front that adds it) or keep release cooldowns (uv exclude-newer, "
            "pip uploaded-prior-to) off for this index"
        )
        result["finding"] = finding
        if expected:
            result.update(status="fail", reason=finding + " (pypi_cooldown_expected is true).")
        else:
            result.update(status="warn", reason=f"WARNING: {finding}{skip_note}.")
        return result
    if not honoured:
        result.update(status="skip", reason=f"no install client could try a cut-off{skip_note}.")
        return result
    result.update(
        status="pass",
        reason=(
            f"{' and '.join(honoured)} honour the index's upload-time {upload_time}: a cut-off after the upload "
            f"installs {requirement}, one before it installs nothing{skip_note}."
        ),
    )
    return result


def advertised_upload_time(
    session: t.Any, index_url: str, name: str, filename: str | None, opts: httputil.ClientOptions
) -> tuple[str | None, str]:
    """(the ``upload-time`` the index gives ``filename``, or None; what the page was) - asked as pip and uv ask."""
    page_url = si.project_url(index_url, si.normalize(name))
    try:
        resp = session.get(page_url, headers={"Accept": si.ACCEPT}, timeout=opts.timeout)
    except Exception as exc:  # noqa: BLE001 - any transport error: the installs say more
        return None, f"unreadable ({type(exc).__name__})"
    if resp.status_code != 200:
        return None, f"HTTP {resp.status_code}"
    page = {"url": page_url, "content_type": resp.headers.get("Content-Type", ""), "body": resp.content}
    try:
        fmt, body = cf.read_body(page)
    except si.IndexReadError:
        return None, "invalid JSON"
    if fmt != "json":
        return None, "HTML (no PEP 691 JSON)"
    entries = [e for e in body.get("files") or [] if isinstance(e, dict)]
    entry = next((e for e in entries if e.get("filename") == filename), None) if filename else None
    if entry is None and entries:
        entry = entries[-1]
    value = entry.get("upload-time") if entry else None
    return (value if isinstance(value, str) else None), f"PEP 691 JSON, api-version {si.api_version(body) or '?'}"


class ClientMissing(Exception):
    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg
        self.missing = True
        self.details: dict[str, t.Any] = {}


def run(
    module: t.Any | None,
    spec: install.InstallSpec,
    opts: httputil.ClientOptions,
    clients: t.Sequence[str],
    uploaded_after: float,
    skew: float = DEFAULT_SKEW,
    filename: str | None = None,
    expected: bool = False,
    now: float | None = None,
) -> dict[str, t.Any]:
    """The installs (each client, each cut-off), the index's upload-time, and ``judge``'s verdict."""
    at = cutoffs(uploaded_after, time.time() if now is None else now, skew)
    outcomes: list[dict[str, t.Any]] = []
    for client in clients:
        for which in ("after", "before"):
            last = outcomes[-1] if outcomes and outcomes[-1]["client"] == client else None
            if which == "before" and last and last["kind"] in SAME_FOR_ANY_CUTOFF:
                # no upload times, no such option, no client: the earlier cut-off would meet the same answer
                outcomes.append(dict(last, cutoff="before", at=at["before"], tried=False))
                continue
            one = spec._replace(uploaded_prior_to=at[which])
            try:
                if client == "uv":
                    try:
                        uv = uv_runner.find_uv(spec.uv, spec.python)
                    except uv_runner.UvNotFound as exc:
                        raise ClientMissing(exc.msg) from None
                    got = uv_runner.install_and_import(module, one._replace(uv=uv), opts)
                elif client == "pip":
                    if pr.pip_has_uploaded_prior_to(spec.python or sys.executable) is False:
                        version = pr.pip_version(spec.python or sys.executable)
                        raise install.InstallError(
                            f"pip {version} has no --uploaded-prior-to (pip 26.0 or later has it).",
                            cutoff="unsupported",
                        )
                    got = pr.install_and_import(module, one, opts)
                else:
                    raise install.InstallError(f"unknown install client {client!r}; use pip or uv.")
                outcomes.append(outcome(client, which, at[which], got))
            except (install.InstallError, ClientMissing) as exc:
                outcomes.append(outcome(client, which, at[which], None, exc))
    session = httputil.make_session(opts)
    try:
        upload_time, page = advertised_upload_time(
            session, install.split_credentials(spec.index_url)[0], spec.name, filename, opts
        )
    finally:
        session.close()
    verdict = judge(outcomes, upload_time, expected, spec.requirement)
    return {"cutoffs": at, "outcomes": outcomes, "upload_time": upload_time, "index_page": page, **verdict}
