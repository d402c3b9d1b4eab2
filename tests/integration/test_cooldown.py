"""Release cooldowns and PEP 700, against real indexes with the real pip and uv.

- pypiserver 2.4.2 gives no upload-time: the cooldown test passes with a WARNING naming what each client does (pip
  refuses the index, uv drops every file), fails with ``pypi_cooldown_expected: true``; index_conformance reports
  the PEP 700 checks as not applicable.
- ``tests.badservers.Pep700Front``, a real front on a real pypiserver that serves PEP 691 JSON with PEP 700 fields
  taken from the stored files: both clients honour the cut-offs (after the upload installs, before it does not) and
  the PEP 700 checks pass; each wrongly served field fails its check (and a wrong upload-time fails cooldown).

verify.yml runs are kept to the tags that matter (upload, index_conformance, cooldown).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import re
import time
import typing as t

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe
from ansible_collections.pypi_ops.pypiserver.plugins.modules import cooldown_check, index_conformance, package_upload
from tests.badservers import Pep700Front
from tests.helpers import ROOT, PlayRun, run_playbook

VERIFY = ROOT / "verify.yml"
TAGS = ["--tags", "upload,index_conformance,cooldown"]
NO_TIME = r"WARNING: the index serves no upload-time \(PEP 700\): pip --uploaded-prior-to refuses"


def _test(run: PlayRun, test_id: str) -> dict[str, t.Any]:
    doc = json.loads((run.report_dir / "results.json").read_text())
    found = [x for x in doc["tests"] if x["id"] == test_id]
    assert found, f"{test_id} did not run:\n{run.output[-3000:]}"
    return found[0]


def _pep700(test: dict[str, t.Any]) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in test["figures"]["findings"] if f["pep"] == "700"}


@pytest.mark.slow
def test_pypiserver_without_upload_time_warns_by_default_and_fails_when_expected(tmp_path):
    with cf.ThreadPoolExecutor(2) as pool:
        default = pool.submit(run_playbook, VERIFY, tmp_path / "default", {}, TAGS)
        expected = pool.submit(run_playbook, VERIFY, tmp_path / "expected", {"pypi_cooldown_expected": True}, TAGS)
        default, expected = default.result(), expected.result()

    assert default.rc == 0, default.output[-3000:]
    cooldown = _test(default, "cooldown")
    assert cooldown["status"] == "passed"
    assert re.search(NO_TIME, cooldown["reason"]), cooldown["reason"]
    assert "uv --exclude-newer drops every file without an upload date" in cooldown["reason"]
    kinds = {(o["client"], o["cutoff"]): o["kind"] for o in cooldown["figures"]["outcomes"]}
    assert kinds == {(c, w): "no_upload_time" for c in ("pip", "uv") for w in ("after", "before")}
    tried = {(o["client"], o["cutoff"]): o["tried"] for o in cooldown["figures"]["outcomes"]}
    assert tried == {(c, w): w == "after" for c in ("pip", "uv") for w in ("after", "before")}  # same for any
    assert cooldown["figures"]["index_page"] == "HTML (no PEP 691 JSON)"
    assert "[WARNING]: the index serves no upload-time (PEP 700)" in default.output
    conformance = _test(default, "index_conformance")
    assert conformance["status"] == "passed"
    pep700 = _pep700(conformance)
    assert set(pep700) == {"pep700_api_version", "pep700_versions", "pep700_size", "pep700_upload_time"}
    assert all(f["status"] == "skip" and f["detail"].startswith("not applicable") for f in pep700.values())

    assert expected.rc != 0
    assert default.results["cooldown"]["status"] == "passed"
    failed = expected.results["cooldown"]
    assert failed["status"] == "failed", failed
    assert "the index serves no upload-time (PEP 700)" in failed["reason"]
    assert "(pypi_cooldown_expected is true)" in failed["reason"]
    assert "Traceback" not in expected.output


@pytest.mark.slow
def test_pep700_front_clients_honour_cutoffs_and_checks_pass(tmp_path, pypiserver):
    with Pep700Front(pypiserver.url) as front:
        run = run_playbook(VERIFY, tmp_path, {"pypi_target": "url", "pypi_url": front.url}, TAGS)
        json_pages = front.json_pages
    assert run.rc == 0, run.output[-3000:]
    assert json_pages > 0, "the clients never read the front's JSON"
    cooldown = _test(run, "cooldown")
    assert cooldown["status"] == "passed", cooldown["reason"]
    assert "pip --uploaded-prior-to and uv --exclude-newer honour the index's upload-time" in cooldown["reason"]
    assert cooldown["figures"]["upload_time"]
    got = {(o["client"], o["cutoff"]): (o["installed"], o["kind"]) for o in cooldown["figures"]["outcomes"]}
    assert all(o["tried"] for o in cooldown["figures"]["outcomes"])
    for client in ("pip", "uv"):
        assert got[(client, "after")] == (True, None)
        assert got[(client, "before")] == (False, "excluded")
    conformance = _test(run, "index_conformance")
    assert conformance["status"] == "passed", conformance["reason"]
    assert conformance["figures"]["supports"]["pep691_json"] is True
    assert conformance["figures"]["supports"]["pep700_upload_time"] is True
    pep700 = _pep700(conformance)
    assert {k: v["status"] for k, v in pep700.items()} == dict.fromkeys(pep700, "pass") and len(pep700) == 4


# ---------------------------------------------------------------- each wrong field, with the modules themselves


@pytest.fixture
def uploaded(pypiserver, tmp_path, run_module):
    """The probe wheel, uploaded to a real pypiserver with twine; with when the upload began."""
    started = time.time()
    built = probe.build(None, str(tmp_path / "dist"), probe=probe.probe_spec("cooldown-probe", "1.0.0"))
    res = run_module(package_upload, {"repository_url": pypiserver.url, "files": [built["wheel"]["path"]]})
    assert not res.failed, res
    return {"server": pypiserver, "wheel": built["wheel"], "started": started}


def _conformance(run_module, front, wheel, started):
    return run_module(
        index_conformance,
        {
            "url": front.url + "simple/",
            "project": "cooldown-probe",
            "filename": wheel["filename"],
            "uploaded_size": wheel["size"],
            "uploaded_version": "1.0.0",
            "uploaded_after": started,
        },
    )


BAD = {
    "api_1_0": ("pep700_api_version", r"meta\.api-version is 1\.0, but the document carries PEP 700 fields"),
    "no_versions": ("pep700_versions", r"'versions' \(empty\) lacks the uploaded version 1\.0\.0"),
    "wrong_size": ("pep700_size", r"the index says .* has size (\d+), the uploaded file has \d+ bytes"),
    "future_time": ("pep700_upload_time", r"has 'upload-time' \S+, in the future"),
    "stale_time": ("pep700_upload_time", r"has 'upload-time' 2001-01-01T00:00:00\.000000Z, before this run started"),
    "no_upload_time": ("pep700_upload_time", r"has no 'upload-time'; pip --uploaded-prior-to and uv --exclude-newer"),
}


def test_pep700_checks_pass_on_the_good_front_and_each_fails_on_its_fault(uploaded, run_module):
    wheel, started = uploaded["wheel"], uploaded["started"]
    with Pep700Front(uploaded["server"].url) as front:
        good = _conformance(run_module, front, wheel, started)
    assert not good.failed, good.get("msg")
    statuses = {f["check"]: f["status"] for f in good["findings"] if f["pep"] == "700"}
    assert statuses == dict.fromkeys(statuses, "pass") and len(statuses) == 4, good["findings"]
    for variant, (check, pattern) in BAD.items():
        with Pep700Front(uploaded["server"].url, variant) as front:
            res = _conformance(run_module, front, wheel, started)
        assert res.failed, (variant, res)
        assert res["summary"]["failing"] == [check], (variant, res["summary"])
        detail = next(f["detail"] for f in res["findings"] if f["check"] == check)
        assert re.search(pattern, detail), (variant, detail)
        assert f"{check} (PEP 700)" in res["msg"] and "\n" not in res["msg"], res["msg"]


@pytest.mark.parametrize(
    "variant,pattern",
    [
        ("stale_time", r"pip --uploaded-prior-to \S+ \(before this run's upload\) still installed"),
        ("future_time", r"pip --uploaded-prior-to \S+ \(after the upload\) did not install cooldown-probe==1\.0\.0"),
    ],
)
def test_cooldown_fails_when_the_upload_time_is_wrong(uploaded, run_module, tmp_path, variant, pattern):
    with Pep700Front(uploaded["server"].url, variant) as front:
        res = run_module(
            cooldown_check,
            {
                "index_url": front.url + "simple/",
                "name": "cooldown-probe",
                "version": "1.0.0",
                "filename": uploaded["wheel"]["filename"],
                "expected_sha256": uploaded["wheel"]["sha256"],
                "uploaded_after": uploaded["started"],
                "work_dir": str(tmp_path / "work"),
            },
        )
    assert res.failed, res
    assert re.search(pattern, res["msg"]), res["msg"]
    assert "uv --exclude-newer" in res["msg"] and "\n" not in res["msg"]
    assert res["msg"].startswith("release cut-offs do not work against the index")
