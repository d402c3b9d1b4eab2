"""End to end: the real verify.yml against real pypiserver processes, with real twine and pip."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.helpers import ROOT, run_playbook

FAULT = ROOT / "tests" / "playbooks" / "fault.yml"
P0 = ["connection", "simple_index", "storage", "upload", "download", "list"]

pytestmark = pytest.mark.slow


PLAN = [
    entry["id"]
    for entry in yaml.safe_load((ROOT / "roles/functional_tests/vars/main.yml").read_text())["pypi_test_plan"]
]
# what the default local target cannot run: S3 storage, helm test, a second replica
SKIPPED_LOCALLY = {"s3_connectivity", "s3_upload", "s3_download", "helm_test", "replicas"}


def _assert_all_passed(run, ids):
    assert run.rc == 0, run.output[-4000:]
    for test_id in ids:
        assert run.results.get(test_id, {}).get("status") == "passed", (test_id, run.results)


ALL = [
    *P0,
    "web_ui",
    "fallback",
    "index_conformance",
    "cooldown",
    "dependencies",
    "multiple_versions",
    "persistence",
    "auth",
    "concurrency",
    "overwrite",
    "large_package",
    "load",
    "clients",
]


def test_local_target_passes_twice(tmp_path):
    first = run_playbook(ROOT / "verify.yml", tmp_path)
    _assert_all_passed(first, ["deploy", *ALL])
    assert list(first.results) == ["deploy", *PLAN]  # the report lists every planned test, in the plan's order
    assert "kubernetes target" in first.results["helm_test"]["reason"]
    assert first.results["s3_connectivity"]["status"] == "skipped"  # plain directory storage
    summary = (first.report_dir / "summary.md").read_text()
    for test_id in ALL:
        assert f"| {test_id} | " in summary
    assert "FAILED" not in summary
    skipped = {test_id for test_id, result in first.results.items() if result["status"] == "skipped"}
    assert skipped == SKIPPED_LOCALLY & set(PLAN), first.results
    # the local server was stopped and its state removed by the teardown
    assert not (tmp_path / "state").exists()
    for figure in ("upload_mib_s=", "download_mib_s=", "up_p95_ms=", "down_p99_ms="):
        assert figure in summary
    # large_package climbed the default size ladder, then the large wheel: each step hash-checked, MiB/s both ways
    tests = json.loads((first.report_dir / "results.json").read_text())["tests"]
    ladder = next(r for r in tests if r["id"] == "large_package")["figures"]["ladder"]
    assert [s["step"] for s in ladder] == ["64 KiB", "256 KiB", "1 MiB", "16 MiB", "110.0 MiB"], ladder
    assert all(s["outcome"] == "uploaded" and s["upload_mib_s"] > 0 and s["download_mib_s"] > 0 for s in ladder)
    assert "size ladder (upload, download, sha256 intact): 64 KiB " in first.results["large_package"]["reason"]
    # the local target runs without pypiserver's fallback; the resolvers passed B 9.0 over (Requires-Python)
    assert "answers HTTP 404 for the unknown project" in first.results["fallback"]["reason"]
    assert "resolved A[extra] to A 1.0, B 1.1, C 1.0" in first.results["dependencies"]["reason"]
    assert "fetched B 9.0 to learn it" in first.results["dependencies"]["reason"]
    timed_pass = r"\| PASSED \| upload [0-9.]+ s \+ install [0-9.]+ s \| pip installed 1\.0\.0"
    assert "## Client matrix" in summary and len(re.findall(timed_pass, summary)) == 2
    assert "## Index conformance" in summary and "| hash_matches | 503 | PASS |" in summary
    # metrics.prom next to junit.xml parses as OpenMetrics: the run passed, with the load and large_package figures
    prom = {f.name: f for f in text_string_to_metric_families((first.report_dir / "metrics.prom").read_text())}
    assert [s.value for s in prom["pypi_ops_verify_run_success"].samples] == [1]
    latencies = prom["pypi_ops_verify_load_latency_seconds"].samples
    assert len(latencies) == 6 and all(0 < s.value < 60 for s in latencies), latencies
    assert len(prom["pypi_ops_verify_large_package_throughput_bytes_per_second"].samples) == 2
    second = run_playbook(ROOT / "verify.yml", tmp_path, {"pypi_large_size_mib": 1, "pypi_load_uploads": 5})
    _assert_all_passed(second, ["deploy", *ALL])


def test_url_target_against_a_separate_server(tmp_path, auth_pypiserver):
    run = run_playbook(
        ROOT / "verify.yml",
        tmp_path,
        {
            "pypi_target": "url",
            "pypi_url": auth_pypiserver.url,
            "pypi_username": auth_pypiserver.username,
            "pypi_password": auth_pypiserver.password,
            "pypi_large_size_mib": 1,
            "pypi_load_uploads": 5,
        },
    )
    assert run.rc == 0, run.output[-4000:]
    assert run.results["storage"]["status"] == "skipped"
    assert "url target has no access" in run.results["storage"]["reason"]
    assert run.results["persistence"]["status"] == "skipped"
    assert "cannot restart" in run.results["persistence"]["reason"]
    for test_id in ["connection", "simple_index", "upload", "download", "list"]:
        assert run.results[test_id]["status"] == "passed", run.results
    # the url target starts and stops nothing: the separately started server is still running
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import status

    assert status(auth_pypiserver.state_dir)["healthy"] is True


def test_wrong_port_fails_connection_and_skips_the_rest(tmp_path):
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port

    run = run_playbook(
        ROOT / "verify.yml",
        tmp_path,
        {"pypi_target": "url", "pypi_url": f"http://127.0.0.1:{free_port()}/", "pypi_connect_wait": 1},
    )
    assert run.rc != 0
    assert run.results["connection"]["status"] == "failed"
    assert "Connection refused" in run.results["connection"]["reason"]
    prom = {f.name: f for f in text_string_to_metric_families((run.report_dir / "metrics.prom").read_text())}
    assert [s.value for s in prom["pypi_ops_verify_run_success"].samples] == [0]
    for test_id in ["simple_index", "storage", "upload", "download", "list"]:
        assert run.results[test_id]["status"] == "skipped", run.results
    assert "prerequisite connection failed" in run.results["simple_index"]["reason"]
    assert "prerequisite connection failed" in run.results["download"]["reason"]  # the root cause, not upload
    assert "connection" in run.output  # the final failure message names the test


def test_server_stopped_after_deploy_is_caught(tmp_path):
    run = run_playbook(
        FAULT,
        tmp_path,
        {"fault": "stop_server", "fault_after": P0, "pypi_connect_wait": 1},
    )
    assert run.rc != 0
    assert run.results["deploy"]["status"] == "passed"
    assert run.results["connection"]["status"] == "failed"
    assert "Connection refused" in run.results["connection"]["reason"]
    assert {run.results[t]["status"] for t in ["simple_index", "storage", "upload", "download", "list"]} == {"skipped"}


def test_tags_select_one_test_and_its_prerequisites(tmp_path):
    run = run_playbook(ROOT / "verify.yml", tmp_path, args=["--tags", "download"])
    assert run.rc == 0, run.output[-4000:]
    assert set(run.results) == {"deploy", "download"}
    p0 = run_playbook(ROOT / "verify.yml", tmp_path, args=["--tags", "p0"])
    assert p0.rc == 0, p0.output[-4000:]
    assert set(p0.results) == {
        "deploy",
        "connection",
        "web_ui",
        "simple_index",
        "fallback",
        "upload",
        "download",
        "list",
        "storage",
    }
    assert run.results["download"]["status"] == "passed"


def test_package_only_on_another_index_named_by_pip_config_fails_download(tmp_path, pypiserver_factory):
    other = pypiserver_factory()  # index B: will hold the probe; pip's config points at it
    conf = tmp_path / "xdg" / "pip"
    conf.mkdir(parents=True)
    (conf / "pip.conf").write_text(f"[global]\nextra-index-url = {other.simple_url}\n")
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "PIP_EXTRA_INDEX_URL": other.simple_url,
    }
    run = run_playbook(
        FAULT,
        tmp_path,
        {
            "fault": "move_probe_to_other_index",
            "fault_before": ["upload"],
            "fault_after": ["download"],
            "other_index_dir": other.package_dir,
        },
        env=env,
    )
    assert run.rc != 0
    assert run.results["upload"]["status"] == "passed", run.results
    assert run.results["download"]["status"] == "failed", run.results
    assert "is not on the index" in run.results["download"]["reason"]
    assert "127.0.0.1" in run.results["download"]["reason"]
    # the probe really is on the other index, so only isolation made the difference
    assert any(name.endswith(".whl") for name in __import__("os").listdir(other.package_dir))


def test_bad_probe_version_is_one_clear_message(tmp_path):
    run = run_playbook(
        ROOT / "verify.yml", tmp_path, {"pypi_probe_version": "1.0 not-a-version"}, args=["--tags", "upload"]
    )
    assert run.rc != 0
    assert run.results["upload"]["status"] == "failed"
    assert "1.0 not-a-version" in run.results["upload"]["reason"]
    assert "Traceback" not in run.output
    assert not (tmp_path / "state").exists()  # teardown ran although the test failed
