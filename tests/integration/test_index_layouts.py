"""Real index layouts (issue 16, part 6): the real verify.yml against healthy indexes laid out like PyPI,
Artifactory or an API-only server, and against the real faults next to them.

Every layout is a real pypiserver behind ``tests.badservers.LayoutIndex`` (files on ``FileHost``, another origin:
``localhost`` on its own port), run as the url target with only the tests it concerns (one playbook run per
layout, all started together, two at a time):

- ``absolute``: project pages link files by absolute URLs on the file host (PyPI's files.pythonhosted.org);
- ``redirect``: a file URL answers 302 to the file host (Artifactory's object storage);
- ``api_root``: the root answers JSON (an API-only server);

healthy, so download, multiple_versions, clients (pip and uv), fallback, dependencies and cooldown pass, and web_ui
passes on an HTML root and is a named skip on the JSON one. The faults must still fail:

- ``foreign_page``: the index redirects the project page to another index (a fallback): download and clients fail;
- ``wrong_file``: the file host serves other bytes behind the advertised URL: download fails;
- ``root_500``: the root answers 500: web_ui fails naming it.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
import typing as t

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.badservers import FileHost, LayoutIndex
from tests.helpers import ROOT, PlayRun, run_playbook

VERIFY = ROOT / "verify.yml"
PARALLEL = max(1, int(os.environ.get("LAYOUT_SUITE_PARALLEL", "2")))
INSTALLS = "upload,download,multiple_versions,clients,web_ui"
# the issue-16 tests that must pass on a healthy layout too: no fallback, resolution, cooldown (a warning here)
NEW_TESTS = "fallback,dependencies,cooldown"
# layout name: (LayoutIndex layout, file host serves corrupt bytes, --tags)
LAYOUTS: dict[str, tuple[str, bool, str]] = {
    "absolute": ("absolute", False, f"{INSTALLS},{NEW_TESTS}"),
    "redirect": ("redirect", False, f"{INSTALLS},{NEW_TESTS}"),
    "api_root": ("api_root", False, f"upload,download,web_ui,{NEW_TESTS}"),
    "foreign_page": ("foreign_page", False, "upload,download,clients,fallback"),
    "wrong_file": ("absolute", True, "upload,download"),
    "root_500": ("root_500", False, "web_ui"),
}

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("index_layouts")]


class Layout(t.NamedTuple):
    run: PlayRun
    index: LayoutIndex
    files: FileHost
    seconds: float


def _one(name: str, base: t.Any) -> Layout:
    layout, corrupt, tags = LAYOUTS[name]
    tmp = base / name
    state = str(tmp / "pypiserver-state")
    _, info = ls.start(ls.Spec(package_dir=str(tmp / "packages"), backend="simple-dir"), state, timeout=30)
    try:
        with FileHost(info["url"], corrupt=corrupt) as files, LayoutIndex(info["url"], layout, files) as index:
            start = time.monotonic()
            run = run_playbook(
                VERIFY,
                tmp,
                {"pypi_target": "url", "pypi_url": index.url, "pypi_connect_wait": 2},
                args=["--tags", tags],
                timeout=900,
            )
            return Layout(run, index, files, round(time.monotonic() - start, 1))
    finally:
        ls.stop(state)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> t.Iterator[dict[str, cf.Future]]:
    """Every layout's run, started at once (PARALLEL at a time); each test waits for the runs it needs."""
    base = tmp_path_factory.mktemp("layouts")
    pool = cf.ThreadPoolExecutor(PARALLEL)
    try:
        yield {name: pool.submit(_one, name, base) for name in LAYOUTS}
    finally:
        pool.shutdown(wait=True)


def _result(layouts: dict[str, cf.Future], name: str) -> Layout:
    got = layouts[name].result(timeout=1200)
    print(f"layout {name}: verify --tags {LAYOUTS[name][2]} took {got.seconds} s")
    return got


def _status(got: Layout, test_id: str) -> dict[str, str]:
    return got.run.results.get(test_id, {"status": "absent", "reason": got.run.output[-3000:]})


@pytest.mark.parametrize("name", ["absolute", "redirect"])
def test_files_on_another_origin_pass(layouts, name):
    got = _result(layouts, name)
    assert got.run.rc == 0, got.run.output[-4000:]
    for test_id in ("upload", "download", "multiple_versions", "clients", "web_ui", *NEW_TESTS.split(",")):
        assert _status(got, test_id)["status"] == "passed", (test_id, got.run.results)
    # dependencies: B and C came from the file host too, every one an advertised file with the uploaded bytes
    assert "resolved A[extra] to A 1.0, B 1.1, C 1.0" in _status(got, "dependencies")["reason"]
    assert any("-dep-c" in p or "_dep_c" in p for p in got.files.served), got.files.served
    # the clients really fetched the wheels from the other origin: pip and uv, every probe
    served = [p for p in got.files.served if p.startswith("/files/") and p.endswith(".whl")]
    assert len(served) >= 4, got.files.served
    clients = _status(got, "clients")["reason"]
    assert "twine->pip passed" in clients and "twine->uv passed" in clients, clients
    if name == "absolute":  # the report says where the file was
        assert f"the index links the file on {got.files.url.rstrip('/')}" in _status(got, "download")["reason"]


def test_api_only_root_skips_web_ui_and_installs(layouts):
    got = _result(layouts, "api_root")
    assert got.run.rc == 0, got.run.output[-4000:]
    web = _status(got, "web_ui")
    assert web["status"] == "skipped", got.run.results
    assert "Content-Type 'application/json'" in web["reason"] and "no web page" in web["reason"], web
    for test_id in ("download", *NEW_TESTS.split(",")):
        assert _status(got, test_id)["status"] == "passed", (test_id, got.run.results)


def test_foreign_project_page_fails(layouts):
    got = _result(layouts, "foreign_page")
    assert got.run.rc != 0
    foreign = f"{got.files.url}simple/"
    download = _status(got, "download")
    assert download["status"] == "failed", got.run.results
    assert "sends the project page" in download["reason"] and foreign in download["reason"], download
    assert "--disable-fallback" in download["reason"], download
    clients = _status(got, "clients")
    assert clients["status"] == "failed", got.run.results
    # every pair fails (the report keeps the first pairs' reasons; the line is long)
    assert clients["reason"].startswith("4 of 4 client pair(s) failed: twine->pip: install with pip failed"), clients
    assert clients["reason"].count("sends the project page") >= 2, clients
    # the fallback test names the same fault for a name no one uploaded: the index sends it to another index
    fallback = _status(got, "fallback")
    assert fallback["status"] == "failed" and "redirects the unknown project" in fallback["reason"], fallback
    assert foreign in fallback["reason"], fallback


def test_wrong_file_behind_an_advertised_url_fails(layouts):
    got = _result(layouts, "wrong_file")
    assert got.run.rc != 0
    download = _status(got, "download")
    assert download["status"] == "failed", got.run.results
    # pip checks the index's #sha256= fragment itself while downloading, and says so
    assert "sha256 differs from the hash in its own index page" in download["reason"], download
    assert any(p.startswith("/files/") for p in got.files.served), got.files.served


def test_root_500_fails(layouts):
    got = _result(layouts, "root_500")
    assert got.run.rc != 0
    web = _status(got, "web_ui")
    assert web["status"] == "failed" and "answered HTTP 500" in web["reason"], got.run.results
