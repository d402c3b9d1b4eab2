"""The pure parts of the PEP 700 checks and the cooldown verdict: upload-time parsing, each check's branches, how a
client's output is read (the texts are the ones pip 26.3 and uv 0.13.9 printed against pypiserver 2.4.2 and a PEP
700 JSON front), and the verdict from the four installs."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import conformance as cf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import cooldown as cd
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install, uv_runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr

T0 = 1_796_000_000.0  # when the run started
UP = T0 + 30  # when the upload happened
FILE = "probe-1.0.0-py3-none-any.whl"
UP_TEXT = cf.utc_text(UP)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-12-05T02:55:31.000000Z", datetime.datetime(2026, 12, 5, 2, 55, 31, tzinfo=datetime.UTC)),
        ("2026-12-05T02:55:31Z", datetime.datetime(2026, 12, 5, 2, 55, 31, tzinfo=datetime.UTC)),
        ("2026-12-05T02:55:31.5Z", datetime.datetime(2026, 12, 5, 2, 55, 31, 500000, tzinfo=datetime.UTC)),
        ("2026-12-05T03:55:31+01:00", datetime.datetime(2026, 12, 5, 2, 55, 31, tzinfo=datetime.UTC)),
        ("2026-12-05T02:55:31.123456789Z", datetime.datetime(2026, 12, 5, 2, 55, 31, 123456, tzinfo=datetime.UTC)),
    ],
)
def test_upload_time_parses_iso_8601_with_a_zone(text, expected):
    assert cf.parse_upload_time(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-12-05T02:55:31", "2026-13-05T02:55:31Z", "yesterday", "", None, 1733367331, "2026-12-05"]
)
def test_upload_time_without_zone_or_invalid_is_refused(text):
    assert cf.parse_upload_time(text) is None


def test_utc_text_is_what_pip_and_uv_take():
    assert cf.utc_text(0) == "1970-01-01T00:00:00Z"
    assert cf.parse_upload_time(cf.utc_text(T0)).timestamp() == T0


def _doc(api="1.1", versions=("1.0.0",), size=1234, upload_time=UP_TEXT, drop=()):
    entry = {"filename": FILE, "url": "/packages/" + FILE, "hashes": {"sha256": "0" * 64}}
    if "size" not in drop:
        entry["size"] = size
    if "upload-time" not in drop:
        entry["upload-time"] = upload_time
    doc = {"meta": {"api-version": api}, "name": "probe", "files": [entry]}
    if "versions" not in drop:
        doc["versions"] = list(versions)
    return doc


WHEEL = {"record": {"filename": FILE, "version": "1.0.0"}, "size": 1234}
UPLOADED = {"size": 1234, "version": "1.0.0", "after": T0, "skew": 120}


def _statuses(doc, uploaded=UPLOADED, now=UP + 5):
    return {f["check"]: (f["status"], f["detail"]) for f in cf.check_pep700("json", doc, WHEEL, uploaded, now)}


def test_pep700_all_pass_on_a_good_document():
    got = _statuses(_doc())
    assert {k: v[0] for k, v in got.items()} == {
        "pep700_api_version": "pass",
        "pep700_versions": "pass",
        "pep700_size": "pass",
        "pep700_upload_time": "pass",
    }


def test_pep700_is_not_applicable_on_html():
    got = cf.check_pep700("html", "<html></html>", WHEEL, UPLOADED, UP)
    assert [f["status"] for f in got] == ["skip"] * 4
    assert all("not applicable" in f["detail"] for f in got)


@pytest.mark.parametrize(
    "doc,check,needle",
    [
        (_doc(api="1.0"), "pep700_api_version", "meta.api-version is 1.0, but the document carries PEP 700 fields"),
        (_doc(api="1.x"), "pep700_api_version", "meta.api-version is 1.x"),
        (_doc(drop=("versions",)), "pep700_versions", "no list of strings 'versions'"),
        (_doc(versions=("0.9",)), "pep700_versions", "lacks the uploaded version 1.0.0"),
        (_doc(size=1235), "pep700_size", "has size 1235, the uploaded file has 1234 bytes"),
        (_doc(drop=("size",)), "pep700_size", "has no integer 'size'"),
        (_doc(size=True), "pep700_size", "has no integer 'size'"),
        (_doc(drop=("upload-time",)), "pep700_upload_time", "has no 'upload-time'"),
        (_doc(upload_time="5 Dec 2026"), "pep700_upload_time", "not an ISO 8601 date and time"),
        (_doc(upload_time=cf.utc_text(UP + 3600)), "pep700_upload_time", "in the future"),
        (_doc(upload_time=cf.utc_text(T0 - 3600)), "pep700_upload_time", "before this run started"),
    ],
)
def test_pep700_each_fault_fails_its_check_only(doc, check, needle):
    got = _statuses(doc)
    assert got[check][0] == "fail" and needle in got[check][1], got[check]
    assert all(status == "pass" for name, (status, _) in got.items() if name != check)


def test_pep700_on_a_plain_pep691_1_0_index_warns_and_a_newer_major_is_not_applicable():
    plain = {"meta": {"api-version": "1.0"}, "name": "probe", "files": [{"filename": FILE, "url": FILE, "hashes": {}}]}
    got = _statuses(plain)
    assert got["pep700_api_version"][0] == "warn" and "cannot work against this index" in got["pep700_api_version"][1]
    assert {got[k][0] for k in ("pep700_versions", "pep700_size", "pep700_upload_time")} == {"skip"}
    got = _statuses(_doc(api="2.0"))
    assert {s for s, _ in got.values()} == {"skip"}


def test_pep700_allows_the_clock_skew_both_ways():
    assert _statuses(_doc(upload_time=cf.utc_text(UP + 100)))["pep700_upload_time"][0] == "pass"
    assert _statuses(_doc(upload_time=cf.utc_text(T0 - 100)))["pep700_upload_time"][0] == "pass"
    tight = dict(UPLOADED, skew=10)
    assert _statuses(_doc(upload_time=cf.utc_text(T0 - 100)), tight)["pep700_upload_time"][0] == "fail"


def test_pep700_without_upload_facts_compares_with_the_download():
    got = _statuses(_doc(size=99), uploaded={})
    assert got["pep700_size"][0] == "fail" and "the uploaded file has 1234 bytes" in got["pep700_size"][1]
    assert got["pep700_upload_time"][0] == "pass"  # no run start given: only parseable and not in the future


# --------------------------------------------------------------------------- the clients' answers

PIP_NO_TIME = "ERROR: Index http://127.0.0.1:50779/simple/cdprobe/ does not provide upload-time metadata."
UV_NO_TIME = (
    "warning: `cdprobe-1.0.0-py3-none-any.whl` is missing an upload date, but user provided: 2030-01-01T00:00:00Z\n"
    "error: No solution found when resolving dependencies\n"
    "hint: `cdprobe` was filtered by `exclude-newer` to only include packages uploaded before 2030-01-01T00:00:00Z."
)
PIP_EXCLUDED = (
    "ERROR: Could not find a version that satisfies the requirement cdprobe (from versions: none)\n"
    "ERROR: No matching distribution found for cdprobe"
)
UV_EXCLUDED = (
    "error: No solution found when resolving dependencies\n"
    "hint: `cdprobe` was filtered by `exclude-newer` to only include packages uploaded before 2020-01-01T00:00:00Z."
)


@pytest.mark.parametrize(
    "text,kind",
    [
        (PIP_NO_TIME, "no_upload_time"),
        (UV_NO_TIME, "no_upload_time"),
        (PIP_EXCLUDED, "excluded"),
        (UV_EXCLUDED, "excluded"),
        ("pip install: error: no such option: --uploaded-prior-to", "unsupported"),
        ("ERROR: HTTP error 500 while getting http://x/", None),
    ],
)
def test_cutoff_outcome_reads_what_the_clients_say(text, kind):
    assert install.cutoff_outcome(text) == kind


def test_the_cutoff_goes_to_each_client_as_its_option():
    opts = http.ClientOptions(None, None, True, None, 5, 30)
    argv = pr.pip_argv(
        "py", "vpy", "http://i/simple/", "p==1", "r.json", opts, uploaded_prior_to="2026-01-01T00:00:00Z"
    )
    assert argv[argv.index("--uploaded-prior-to") + 1] == "2026-01-01T00:00:00Z"
    assert "--uploaded-prior-to" not in pr.pip_argv("py", "vpy", "http://i/simple/", "p==1", "r.json", opts)
    argv = uv_runner.install_argv("uv", "vpy", "http://i/simple/", "p==1", opts, False, "2026-01-01T00:00:00Z")
    assert argv[argv.index("--exclude-newer") + 1] == "2026-01-01T00:00:00Z" and argv[-1] == "p==1"


def test_cutoffs_keep_the_skew_from_the_upload():
    got = cd.cutoffs(T0, UP + 10, 120)
    assert got == {"before": cf.utc_text(T0 - 120), "after": cf.utc_text(UP + 130)}


# --------------------------------------------------------------------------- the verdict


def _row(client, which, installed, kind=None, msg=""):
    return {
        "client": client,
        "cutoff": which,
        "at": "2026-12-05T03:00:00Z",
        "installed": installed,
        "kind": kind,
        "filename": FILE if installed else None,
        "msg": msg,
    }


HONOURED = [_row(c, "after", True) for c in ("pip", "uv")] + [
    _row(c, "before", False, "excluded", "left no file") for c in ("pip", "uv")
]
NO_TIME = [_row(c, w, False, "no_upload_time", "no upload time") for c in ("pip", "uv") for w in ("after", "before")]


def test_verdict_passes_when_both_clients_honour_the_upload_time():
    got = cd.judge(HONOURED, "2026-12-05T03:00:00Z")
    assert got["status"] == "pass"
    assert "pip --uploaded-prior-to and uv --exclude-newer honour the index's upload-time" in got["reason"]


def test_verdict_without_upload_time_is_a_warning_then_a_failure_when_expected():
    got = cd.judge(NO_TIME, None)
    assert got["status"] == "warn" and got["reason"].startswith("WARNING: the index serves no upload-time (PEP 700)")
    assert "pip --uploaded-prior-to refuses to install anything" in got["finding"]
    assert "uv --exclude-newer drops every file without an upload date" in got["finding"]
    failed = cd.judge(NO_TIME, None, expected=True)
    assert failed["status"] == "fail" and failed["reason"].endswith("(pypi_cooldown_expected is true).")


def test_verdict_names_a_client_that_ignores_the_cutoff():
    ignoring = [_row("uv", "after", True), _row("uv", "before", True)]
    got = cd.judge(ignoring, None)
    assert got["status"] == "warn" and "uv --exclude-newer ignores the cut-off" in got["finding"]


def test_verdict_fails_when_a_cutoff_is_not_honoured():
    rows = [_row("pip", "after", True), _row("pip", "before", True)]
    got = cd.judge(rows, "2001-01-01T00:00:00Z", requirement="probe==1.0.0")
    assert got["status"] == "fail"
    assert "(before this run's upload) still installed " + FILE in got["reason"]
    rows = [_row("uv", "after", False, "excluded", "left no file"), _row("uv", "before", False, "excluded")]
    got = cd.judge(rows, "2099-01-01T00:00:00Z", requirement="probe==1.0.0")
    assert got["status"] == "fail" and "(after the upload) did not install probe==1.0.0" in got["reason"]
    rows = [_row("uv", "after", True), _row("uv", "before", False, "error", "HTTP 500")]
    assert "failed for another reason than the cut-off: HTTP 500" in cd.judge(rows, "x")["reason"]


def test_verdict_skips_clients_that_cannot_try_and_names_them():
    rows = [_row("uv", w, False, "missing", "uv is not installed") for w in ("after", "before")]
    rows += [_row("pip", w, False, "unsupported", "pip 25.3 has no --uploaded-prior-to") for w in ("after", "before")]
    got = cd.judge(rows, None)
    assert got["status"] == "skip"
    assert "uv is not installed" in got["reason"] and "pip 25.3 has no --uploaded-prior-to" in got["reason"]
    got = cd.judge(rows[:2] + HONOURED[::2], "2026-12-05T03:00:00Z")
    assert got["status"] == "pass" and "(uv is not installed)" in got["reason"]


def test_outcome_keeps_one_sentence_and_the_kind():
    err = install.InstallError("pip --uploaded-prior-to X refused. Last lines of pip's output:\nERROR: ...", cutoff="x")
    row = cd.outcome("pip", "after", "X", None, err)
    assert row["msg"] == "pip --uploaded-prior-to X refused." and row["kind"] == "x" and not row["installed"]
    row = cd.outcome("pip", "after", "X", {"filename": FILE})
    assert row["installed"] and row["filename"] == FILE and row["kind"] is None
