"""The diagnostics bundle's rules, on real files and processes: no secret in any form, bounded files and bundle,
a deadline that holds, a dead process named with its log's last line, and the report linking the bundle."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import diagnostics as diag
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server, report

SECRET = "S3cr3t-unit-9f8e7d6c5b4a"
USER = "alice"


def all_forms(secret: str = SECRET, user: str = USER) -> list[str]:
    return [
        secret,
        urllib.parse.quote(secret, safe=""),
        base64.b64encode(f"{user}:{secret}".encode()).decode(),
        base64.b64encode(f"{user}:{secret}".encode()).decode().rstrip("="),
    ]


def bundle_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- redaction


def test_every_form_of_a_secret_is_redacted():
    red = diag.Redactor([SECRET], [USER])
    basic = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    as_json = json.dumps({"p": SECRET + "\n"})
    text = (
        f"password is {SECRET}\n"
        f"url http://{USER}:{urllib.parse.quote(SECRET)}@host/simple/\n"
        f"header Authorization: Basic {basic}\n"
        f"json {as_json}\n"
        f"embedded-{basic}-in-a-line\n"
    )
    out = red.redact(text)
    for form in all_forms():
        assert form not in out, form
    assert diag.REDACTED in out
    assert "password is" in out  # the rest of the text stays readable


def test_credential_looking_values_are_redacted_without_knowing_the_secret():
    red = diag.Redactor()
    out = red.redact(
        "GET https://bob:hunter2hunter2@idx.example/simple/\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig\n"
        "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n"
        "Cookie: session=abcdef0123456789\n"
    )
    for leaked in (
        "hunter2hunter2",
        "eyJhbGciOiJIUzI1NiJ9",
        "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "abcdef0123456789",
    ):
        assert leaked not in out, leaked
    assert "idx.example/simple/" in out


def test_headers_lose_authorization_and_cookies_and_keep_the_challenge():
    red = diag.Redactor([SECRET], [USER])
    got = dict(
        red.headers(
            [
                ("Authorization", "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()),
                ("Set-Cookie", "sid=123456789; HttpOnly"),
                ("Cookie", "sid=123456789"),
                ("WWW-Authenticate", 'Basic realm="pypi"'),
                ("X-Echo", f"token {SECRET}"),
            ]
        )
    )
    assert got["Authorization"] == got["Set-Cookie"] == got["Cookie"] == diag.REMOVED
    assert got["WWW-Authenticate"] == 'Basic realm="pypi"'
    assert SECRET not in got["X-Echo"]


def test_a_command_line_loses_option_values_that_are_secrets():
    red = diag.Redactor([SECRET])
    argv = ["twine", "--password", "whatever-it-is", "-P", "/state/htpasswd", f"--token={SECRET}"]
    out = diag.redact_argv(argv, red)
    assert "whatever-it-is" not in out and SECRET not in " ".join(out)
    assert "/state/htpasswd" in out  # a path is not a secret


# ---------------------------------------------------------------- caps


def test_a_long_log_is_cut_to_the_file_cap_and_keeps_its_end(tmp_path):
    bundle = diag.Bundle(str(tmp_path), diag.Redactor(), file_cap=4096, total_cap=1 << 20)
    text = "".join(f"line {i:06d} of the server log\n" for i in range(20000))
    bundle.add("server.log", "log", text)
    data = (tmp_path / "server.log").read_bytes()
    assert len(data) <= 4096
    assert data.startswith(b"[truncated: kept the last")
    assert b"per-file cap (4096 bytes)" in data
    assert data.rstrip().endswith(b"line 019999 of the server log")
    assert bundle.files[0]["truncated"] is True


def test_a_body_keeps_its_start(tmp_path):
    bundle = diag.Bundle(str(tmp_path), diag.Redactor(), file_cap=2048, total_cap=1 << 20)
    bundle.add("body.txt", "body", "HEAD-OF-BODY " + "x" * 10000, keep="head")
    data = (tmp_path / "body.txt").read_bytes()
    assert len(data) <= 2048 and data.startswith(b"HEAD-OF-BODY") and b"[truncated: kept the first" in data


def test_the_bundle_stops_at_its_total_cap_and_says_what_it_left_out(tmp_path):
    total = diag.INDEX_RESERVE + 3 * 4096
    bundle = diag.Bundle(str(tmp_path), diag.Redactor(), file_cap=4096, total_cap=total)
    for i in range(10):
        bundle.add(f"f{i}.txt", f"file {i}", "y" * 10000)
    written = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert written <= total - diag.INDEX_RESERVE
    assert len(bundle.files) >= 3 and bundle.skipped, "the later files are named as left out"
    assert all("total cap" in s["why"] for s in bundle.skipped)
    index = diag.index_md(bundle, "local", [], [], 60, 0.1)
    assert "## Not collected" in index and "f9.txt" in index


def test_a_cut_never_leaves_the_start_or_end_of_a_secret(tmp_path):
    red = diag.Redactor([SECRET], [USER])
    # the secret straddles the head cut: only its first characters would survive a plain cut
    head_text = "a" * (2048 - 200 - 8) + SECRET + "b" * 5000
    # ...the redaction runs on the whole text first, so the cut lands on [REDACTED]; now a secret the redactor does not
    # know as a whole (its tail only is in the window) is the tail case, handled by dropping the first line
    bundle = diag.Bundle(str(tmp_path), red, file_cap=2048, total_cap=1 << 20)
    bundle.add("head.txt", "head", head_text, keep="head")
    data = (tmp_path / "head.txt").read_text()
    assert SECRET[:6] not in data
    for k in range(diag.MIN_PARTIAL, len(SECRET)):
        assert not data.split("\n[truncated")[0].endswith(SECRET[:k])
    assert red.trim_partials("xxxx" + SECRET[:9], start=False, end=True) == "xxxx"
    assert red.trim_partials(SECRET[-9:] + "yyyy", start=True, end=False) == "yyyy"


def test_a_tail_read_drops_the_line_cut_at_its_start(tmp_path):
    log = tmp_path / "server.log"
    log.write_text(f"first line holds {SECRET}\n" + "".join(f"entry {i}\n" for i in range(5000)))
    text, size = diag.read_tail(str(log), 1024, lines=10_000)
    assert size == log.stat().st_size
    assert SECRET[-6:] not in text and "entry 4999" in text
    assert not text.startswith("ntry")  # no half line


# ---------------------------------------------------------------- deadline


def test_collection_stops_at_the_deadline_and_names_what_did_not_finish(tmp_path):
    bundle = diag.Bundle(str(tmp_path), diag.Redactor())
    c = diag.Collector(bundle, time.monotonic() + 1.0)
    c.step("quick", lambda: bundle.add("quick.txt", "quick", "ok"))
    c.step("stuck", lambda: time.sleep(30))
    c.step("never", lambda: bundle.add("never.txt", "never", "no"))
    start = time.monotonic()
    unfinished = c.run()
    assert time.monotonic() - start < 2.0
    assert unfinished == ["stuck", "never"]
    assert bundle.add("late.txt", "late", "after the deadline") is None  # closed: nothing more is written
    assert not (tmp_path / "late.txt").exists() and (tmp_path / "quick.txt").exists()


def test_a_failing_step_is_a_note_not_an_error(tmp_path):
    bundle = diag.Bundle(str(tmp_path), diag.Redactor([SECRET]))
    c = diag.Collector(bundle, time.monotonic() + 5)

    def boom() -> None:
        raise RuntimeError(f"broken with {SECRET}")

    c.step("boom", boom)
    c.step("after", lambda: bundle.add("after.txt", "after", "still collected"))
    assert c.run() == []
    assert (tmp_path / "after.txt").exists()
    assert bundle.notes and "RuntimeError" in bundle.notes[0] and SECRET not in bundle.notes[0]


# ---------------------------------------------------------------- a dead local server, a real HTTP exchange


def dead_pid() -> tuple[int, str | None]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    token = local_server.proc_start_token(proc.pid)
    proc.wait()
    return proc.pid, token


def test_a_dead_server_is_named_with_its_last_log_line(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    pid, token = dead_pid()
    (state / "server.log").write_text(f"started with {SECRET}\nServing on http://127.0.0.1:1234\nKilled by the test\n")
    (state / "server.json").write_text(
        json.dumps(
            {
                "pid": pid,
                "pid_start": token,
                "argv": [sys.executable, "-m", "pypiserver", "run", "-P", str(state / "htpasswd")],
                "host": "127.0.0.1",
                "port": 9,
                "started_at": time.time() - 5,
                "log_file": str(state / "server.log"),
                "package_dir": str(state / "packages"),
            }
        )
    )
    (state / "packages").mkdir()
    (state / "packages" / "probe-1.0.tar.gz").write_bytes(b"x" * 100)
    req = diag.Request(
        dest=str(tmp_path / "reports"),
        target="local",
        server={"base_url": "", "storage": {"path": str(state / "packages")}},
        results=[{"id": "upload", "status": "failed", "reason": "the server went away"}],
        state_dir=str(state),
        password=SECRET,
        username=USER,
        timeout=10,
    )
    out = diag.collect(req)
    root = tmp_path / "reports" / "diagnostics"
    assert out["cause"].startswith(f"pypiserver process {pid} is not running")
    assert "Killed by the test" in out["cause"]
    index = (root / "index.md").read_text()
    assert out["cause"] in index and "**upload**" in index
    assert {"local/process.md", "local/server.log", "local/df.txt"} <= set(out["files"])
    assert "alive: no" in (root / "local" / "process.md").read_text()
    assert "probe-1.0.tar.gz" in (root / "local" / "df.txt").read_text()
    text = bundle_text(root)
    for form in all_forms():
        assert form not in text


class _Echo(BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def do_GET(self):
        body = (f"<html>broken; you sent {self.headers.get('Authorization')}</html>" + "z" * 9000).encode()
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Set-Cookie", "sid=s3ss10n-v4lue")
        self.send_header("WWW-Authenticate", 'Basic realm="pypi"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_an_http_probe_records_the_exchange_without_credentials(echo_server):
    red = diag.Redactor([SECRET], [USER])
    probe = diag.http_probe("GET", echo_server + "simple/", red, 5.0, auth=(USER, SECRET))
    assert probe["status"] == 500
    headers = dict(probe["headers"])
    assert headers["Set-Cookie"] == diag.REMOVED and headers["WWW-Authenticate"] == 'Basic realm="pypi"'
    assert dict(probe["request_headers"])["Authorization"] == diag.REMOVED
    assert probe["body_head"].startswith("<html>broken") and len(probe["body_head"].encode()) <= diag.BODY_HEAD
    text = diag.probe_text(probe)
    assert "< HTTP 500" in text
    for form in all_forms() + ["s3ss10n-v4lue"]:
        assert form not in text


# ---------------------------------------------------------------- kubernetes state (kubectl's JSON)


def test_a_crash_looping_pod_is_named():
    pod = {
        "metadata": {"name": "pypi-pypiserver-abc"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "pypiserver",
                    "ready": False,
                    "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
                    "lastState": {
                        "terminated": {"reason": "Error", "exitCode": 1, "finishedAt": "2026-01-01T00:00:00Z"}
                    },
                }
            ],
        },
    }
    lines, causes = diag.pod_summary(pod)
    assert causes == [
        "pod pypi-pypiserver-abc container pypiserver is in CrashLoopBackOff (restarts 5), last exit 1 (Error)"
    ]
    assert any("restarts=5" in line for line in lines)


def test_kubectl_and_helm_get_the_kubeconfig_and_context():
    k = diag.K8s(
        "ns", "rel", "app=x", kubeconfig="/k/config", context="kind-x", kubectl="/bin/kubectl", helm="/bin/helm"
    )
    assert k.kubectl_argv("get", "pods")[:5] == ["/bin/kubectl", "--kubeconfig", "/k/config", "--context", "kind-x"]
    assert k.helm_argv("status", "rel") == [
        "/bin/helm", "status", "rel", "--kubeconfig", "/k/config", "--kube-context", "kind-x", "-n", "ns"
    ]  # fmt: skip


# ---------------------------------------------------------------- the report links the bundle


def test_the_report_links_the_bundle_only_when_there_is_one(tmp_path):
    results = report.normalize(
        [{"id": "connection", "status": "failed", "reason": "refused"}, {"id": "upload", "status": "passed"}]
    )
    with_link = report.write(str(tmp_path / "a"), results, "s", {}, diagnostics="diagnostics/index.md")
    assert "- Diagnostics: diagnostics/index.md" in Path(with_link["summary"]).read_text()
    assert '<a href="diagnostics/index.md">' in Path(with_link["html"]).read_text()
    junit = Path(with_link["junit"]).read_text()
    assert "refused\ndiagnostics: diagnostics/index.md</failure>" in junit
    assert junit.count("diagnostics:") == 1  # the failed test only
    plain = report.write(str(tmp_path / "b"), results, "s", {})
    for key in ("summary", "html", "junit"):
        assert "diagnostics" not in Path(plain[key]).read_text().lower()


def test_a_previous_bundle_is_replaced(tmp_path):
    root = tmp_path / "diagnostics"
    root.mkdir()
    (root / "index.md").write_text("old")
    (root / "stale.txt").write_text("old")
    assert diag.prepare_dir(str(root)) is None
    assert list(root.iterdir()) == []
    os.chmod(tmp_path, 0o500)
    try:
        if os.geteuid() != 0:  # root writes anyway
            assert "cannot create" in (diag.prepare_dir(str(tmp_path / "other" / "diagnostics")) or "")
    finally:
        os.chmod(tmp_path, 0o700)


# ---------------------------------------------------------------- kubernetes parsing


def test_the_last_log_line_drops_kubectl_timestamps_and_a_stamp_alone():
    text = (
        "2026-12-05T12:21:52.565002922Z usage: pypi-server [-h]\n"
        "2026-12-05T12:21:52.565058134Z pypi-server: error: unrecognized arguments: --no-such-option\n"
        "2026-12-05T12:21:52.565059566Z \n"
    )
    assert diag.last_line(text) == "pypi-server: error: unrecognized arguments: --no-such-option"
    assert diag.last_line("2026-01-01T00:00:00+02:00 plain\n") == "plain"
    assert diag.last_line("no stamp here\n\n") == "no stamp here"
    assert diag.last_line("2026-12-05T12:21:52Z \n") == ""


def test_events_are_sorted_by_when_they_last_happened_whatever_field_holds_it():
    events = [
        {  # core/v1, seen last at :30 (x4)
            "metadata": {"name": "b"},
            "type": "Normal",
            "reason": "Started",
            "involvedObject": {"kind": "Pod", "name": "p"},
            "lastTimestamp": "2026-12-05T12:24:30Z",
            "firstTimestamp": "2026-12-05T12:23:40Z",
            "count": 4,
            "message": "Started container pypiserver",
        },
        {  # events.k8s.io (the scheduler's): no lastTimestamp, a MicroTime eventTime with nanoseconds
            "metadata": {"name": "a"},
            "type": "Warning",
            "reason": "FailedScheduling",
            "involvedObject": {"kind": "Pod", "name": "p"},
            "lastTimestamp": None,
            "eventTime": "2026-12-05T12:23:32.618141123Z",
            "message": "0/1 nodes are available:\n unbound PVC",
        },
        {  # a series: its last observation counts
            "metadata": {"name": "c"},
            "type": "Warning",
            "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "p"},
            "eventTime": "2026-12-05T12:23:00.000000Z",
            "series": {"count": 10, "lastObservedTime": "2026-12-05T12:24:34.100000Z"},
            "message": "Back-off restarting failed container",
        },
        {"metadata": {"name": "d", "creationTimestamp": "2026-12-05T12:23:33Z"}, "reason": "Odd"},
    ]
    lines = diag.events_text(events).splitlines()
    assert [line.split()[2] for line in lines] == ["FailedScheduling", "Odd", "Started", "BackOff"]
    assert lines[0] == (
        "2026-12-05T12:23:32.618141123Z Warning FailedScheduling pod/p: 0/1 nodes are available: unbound PVC"
    )
    assert lines[2] == "2026-12-05T12:24:30Z Normal Started pod/p (x4): Started container pypiserver"
    assert lines[3].endswith("BackOff pod/p (x10): Back-off restarting failed container")
    assert lines[1] == "2026-12-05T12:23:33Z ? Odd ?/?: "
    assert diag.events_text([]) == "No events.\n"


def test_only_restarted_containers_have_a_previous_log():
    pod = {
        "status": {
            "initContainerStatuses": [{"name": "init", "restartCount": 0}],
            "containerStatuses": [
                {"name": "pypiserver", "restartCount": 3},
                {"name": "sidecar", "restartCount": 0},
                {"name": "other"},
            ],
        }
    }
    assert diag.restarted_containers(pod) == [("pypiserver", 3)]
    assert diag.restarted_containers({}) == []


def test_helm_test_pods_are_found_by_their_hook_and_the_release_label():
    def pod(name, hook, instance=None):
        labels = {"app.kubernetes.io/instance": instance} if instance else {}
        return {"metadata": {"name": name, "annotations": {"helm.sh/hook": hook} if hook else {}, "labels": labels}}

    assert diag._is_test_pod(pod("pypi-pypiserver-test-storage", "test", "pypi"), "pypi")
    assert diag._is_test_pod(pod("x", "test-success, test", "pypi"), "pypi")
    assert not diag._is_test_pod(pod("pypi-pypiserver-test-storage", "test", "pypi2"), "pypi")  # another release
    assert not diag._is_test_pod(pod("pypi-pypiserver-abc", "", "pypi"), "pypi")  # the server itself
    assert not diag._is_test_pod(pod("pypi-x", "pre-install", "pypi"), "pypi")
    assert diag._is_test_pod(pod("pypi-test", "test"), "pypi")  # unlabelled: the release's name prefix
    assert not diag._is_test_pod(pod("pypi2-test", "test"), "pypi")


def test_a_crash_loop_and_its_last_log_line_become_one_finding(tmp_path):
    bundle = diag.Bundle(str(tmp_path), diag.Redactor([SECRET]))
    bundle.cause("pod p-1 container pypiserver is in CrashLoopBackOff (restarts 3), last exit 2 (Error)")
    assert bundle.amend("pod p-1 container pypiserver ", f"; the previous container's last log line: bad {SECRET}")
    assert not bundle.amend("pod p-2 container pypiserver ", "; nothing")
    assert bundle.causes == [
        "pod p-1 container pypiserver is in CrashLoopBackOff (restarts 3), last exit 2 (Error); "
        "the previous container's last log line: bad [REDACTED]"
    ]


def test_a_container_that_exited_non_zero_is_named_and_a_clean_exit_is_not():
    def pod(code, reason):
        terminated = {"exitCode": code, "reason": reason}
        return {
            "metadata": {"name": "pypi-pypiserver-test-upload"},
            "status": {"phase": "Failed" if code else "Succeeded", "containerStatuses": [
                {"name": "upload", "ready": False, "restartCount": 0, "state": {"terminated": terminated}}
            ]},
        }  # fmt: skip

    assert diag.pod_summary(pod(1, "Error"))[1] == ["pod pypi-pypiserver-test-upload container upload exited 1 (Error)"]
    assert diag.pod_summary(pod(0, "Completed"))[1] == []
