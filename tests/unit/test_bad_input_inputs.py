"""Bad inputs (issue 7): every case ends within its timeout with one sentence naming the cause and the next step,
no traceback and no hang; and every wait loop has a deadline and a bounded backoff.

Real pypiserver processes on 127.0.0.1, real twine and pip, modules run in-process. Cases already covered elsewhere
are not repeated (the report lists them): package_build's invalid probe name/version/import name
(tests/unit/test_package_build.py), package_upload's missing file and .txt with twine (test_package_upload.py),
package_remove's bad prefix (test_package_remove.py), local_server's busy port and file-as-directory
(test_local_server.py), an unknown pypi_target (tests/integration/test_argument_specs.py).

"Not writable" for a root test process: chmod does not stop root, so the package directory is ``/sys`` (sysfs refuses
to create files, for root too: EACCES) and, where the test may mount, a read-only bind mount of a real directory
(EROFS, what a read-only volume gives a pod or a container).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import credentials as cred
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import port_forward as pf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import remove, traffic
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import (
    local_server,
    package_install,
    package_remove,
    package_upload,
)
from tests.helpers import run_playbook


def _one_sentence(msg: str) -> None:
    assert "Traceback" not in msg and "\n" not in msg and 'File "' not in msg, msg


# ---------------------------------------------------------------- versions and names


def test_package_remove_refuses_an_invalid_name_before_any_request(run_module):
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens: a request would fail with another message
    res = run_module(package_remove, {"url": url, "name": "bad name!"})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].startswith("name 'bad name!' is not a valid project name: give letters, digits")


@pytest.mark.parametrize("bad", ["1.0 bad", "==1.0", "", "1.0/../x"])
def test_package_remove_refuses_a_version_that_cannot_be_one_before_any_request(bad, run_module):
    url = f"http://127.0.0.1:{free_port()}/"
    res = run_module(package_remove, {"url": url, "name": "pkg", "versions": ["1.0.0", bad]})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].startswith(f"versions entry {bad!r} is not a version (letters, digits and . _ + ! - only")
    assert "give the versions as the index lists them" in res["msg"]


def test_package_remove_refuses_a_non_pep440_version_the_index_does_not_have(pypiserver, tmp_path, run_module):
    """'latest' looks like a version to a file name, but it is no PEP 440 version and nothing has it: a typo, which
    must not pass as 'already removed'. Nothing is removed, not even the valid version given with it."""
    wheel = traffic.synthetic_wheel(str(tmp_path), "rm-probe", "1.0.0")
    os.makedirs(pypiserver.package_dir, exist_ok=True)
    os.replace(wheel["path"], os.path.join(pypiserver.package_dir, wheel["filename"]))
    res = run_module(package_remove, {"url": pypiserver.url, "name": "rm-probe", "versions": ["1.0.0", "latest"]})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"] == (
        "versions entry 'latest' is not a PEP 440 version and rm-probe has no file with that version (versions on the "
        "index: 1.0.0); give the versions as the index lists them, for example 1.0.0."
    )
    assert os.listdir(pypiserver.package_dir) == [wheel["filename"]]
    # an absent but valid version is not an error: it is reported, and idempotent removal goes on
    ok = run_module(package_remove, {"url": pypiserver.url, "name": "rm-probe", "versions": ["9.9.9"]})
    assert not ok.failed, ok
    assert ok["absent"] == ["9.9.9"] and ok["changed"] is False


@pytest.mark.parametrize(
    "name,version", [("pypi-ops-probe", "1.0 bad"), ("bad name!", None), ("pypi-ops-probe", "1.0; os_name=='x'")]
)
def test_package_install_refuses_an_invalid_name_or_version_before_pip_runs(
    name, version, pypiserver, tmp_path, run_module
):
    args = {"index_url": pypiserver.simple_url, "name": name, "work_dir": str(tmp_path), "retries": 0}
    if version is not None:
        args["version"] = version
    res = run_module(package_install, args)
    assert res.failed
    _one_sentence(res["msg"])
    assert repr(version if version is not None else name) in res["msg"]
    assert res.get("pip_output") in (None, [])  # pip never ran
    assert os.listdir(tmp_path) == []


VERSION_PLAY = """
- name: The functional tests that build with a version variable, given a bad one
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    pypi_target: url
  tasks:
    - name: Deploy (url target)
      ansible.builtin.import_role:
        name: pypi_ops.pypiserver.deploy
    - name: Upload, with pypi_probe_version
      ansible.builtin.include_role:
        name: pypi_ops.pypiserver.functional_tests
        tasks_from: upload.yml
    - name: Keep upload's record, and let multiple_versions run on its own (as with --tags multiple_versions)
      ansible.builtin.set_fact:
        _upload_results: "{{ pypi_results }}"
        pypi_results: "{{ pypi_results | rejectattr('id', 'equalto', 'upload') | list }}"
    - name: Multiple_versions, with pypi_mv_versions
      ansible.builtin.include_role:
        name: pypi_ops.pypiserver.functional_tests
        tasks_from: multiple_versions.yml
    - name: Results
      ansible.builtin.copy:
        content: "{{ (_upload_results + pypi_results) | to_json }}"
        dest: "{{ results_file }}"
        mode: "0600"
"""


@pytest.mark.slow
def test_roles_report_an_invalid_version_variable_in_one_sentence(pypiserver, tmp_path):
    """The role's own task files (upload.yml, multiple_versions.yml) on the url target, against a real pypiserver:
    the test that builds with the variable fails with the build module's sentence and its task, nothing is uploaded,
    and the run ends (no hang, no traceback). One ansible-playbook run for both variables."""
    playbook = tmp_path / "versions.yml"
    playbook.write_text(textwrap.dedent(VERSION_PLAY))
    results_file = tmp_path / "results.json"
    run = run_playbook(
        playbook,
        tmp_path,
        {
            "pypi_url": pypiserver.url,
            "pypi_probe_version": "1.0 bad",
            "pypi_mv_versions": ["one.two"],
            "pypi_mv_prerelease": "",  # nothing else to build: the bad version is the whole list
            "results_file": str(results_file),
        },
        timeout=300,
    )
    assert run.rc == 0, run.output[-4000:]
    results = {r["id"]: r for r in json.loads(results_file.read_text())}
    expected = {
        "upload": "Invalid version '1.0 bad': it is not a PEP 440 version; use one like '1.0.0'",
        "multiple_versions": "Invalid version 'one.two': it is not a PEP 440 version; use one like '1.0.0'",
    }
    for test_id, needle in expected.items():
        got = results[test_id]
        assert got["status"] == "failed", results
        assert got["reason"].startswith(needle), got["reason"]
        assert "[task: " in got["reason"] and "Traceback" not in got["reason"]
    assert not os.path.isdir(pypiserver.package_dir) or os.listdir(pypiserver.package_dir) == []


# ---------------------------------------------------------------- dist files


def _not_dists(tmp_path) -> dict[str, str]:
    wheel = tmp_path / "garbage-1.0-py3-none-any.whl"
    wheel.write_bytes(b"this is not a zip archive")
    sdist = tmp_path / "garbage-1.0.tar.gz"
    sdist.write_bytes(b"this is not a gzip file")
    return {"wheel": str(wheel), "sdist": str(sdist)}


@pytest.mark.parametrize("client", ["twine", "http"])
def test_package_upload_missing_file_fails_before_contacting_the_server(client, tmp_path, run_module):
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens: contacting it would say so instead
    missing = tmp_path / "gone-1.0-py3-none-any.whl"
    res = run_module(package_upload, {"repository_url": url, "files": [str(missing)], "client": client})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"] == (
        f"Dist file {missing} does not exist; build it first (pypi_ops.pypiserver.package_build) or fix the path."
    )


@pytest.mark.parametrize("client", ["twine", "http"])
def test_package_upload_wrong_suffix_fails_before_contacting_the_server(client, tmp_path, run_module):
    url = f"http://127.0.0.1:{free_port()}/"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    res = run_module(package_upload, {"repository_url": url, "files": [str(notes)], "client": client})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].startswith(f"{notes} is not a Python distribution (expected one of ")


@pytest.mark.parametrize("client", ["twine", "http"])
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_package_upload_file_that_is_not_a_dist_is_refused_in_one_sentence(
    client, kind, pypiserver, tmp_path, run_module
):
    """A dist-named file that is no archive: twine dies in zipfile/tarfile (its traceback must not become the
    message); the direct POST would store it (pypiserver does not look inside) and call it uploaded."""
    path = _not_dists(tmp_path)[kind]
    res = run_module(package_upload, {"repository_url": pypiserver.url, "files": [path], "client": client})
    assert res.failed
    _one_sentence(res["msg"])
    assert os.path.basename(path) in res["msg"]
    assert not os.path.isdir(pypiserver.package_dir) or os.listdir(pypiserver.package_dir) == []


def test_package_upload_directory_named_like_a_dist(tmp_path, run_module):
    folder = tmp_path / "folder-1.0.tar.gz"
    folder.mkdir()
    url = f"http://127.0.0.1:{free_port()}/"
    res = run_module(package_upload, {"repository_url": url, "files": [str(folder)], "client": "http"})
    assert res.failed
    _one_sentence(res["msg"])
    assert f"Dist file {folder} is not a regular file" in res["msg"]


# ---------------------------------------------------------------- local target: package dir and port


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "state"
    yield str(path)
    ls.stop(str(path))  # whatever a case did, no server survives it


@pytest.fixture
def readonly_bind(tmp_path):
    """A real directory, bind-mounted read-only onto itself (EROFS even for root); skipped where mounting is denied."""
    target = tmp_path / "ro-volume"
    target.mkdir()
    first = subprocess.run(["mount", "--bind", str(target), str(target)], capture_output=True, text=True, check=False)
    if first.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs CAP_SYS_ADMIN): {first.stderr.strip()}")
    ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True, text=True, check=False)
    try:
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.strip()}")
        yield str(target)
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, check=False)


def _unwritable(request, kind: str) -> tuple[str, str]:
    if kind == "sysfs":
        return "/sys", "Permission denied"
    return request.getfixturevalue("readonly_bind"), "Read-only file system"


@pytest.mark.parametrize("kind", ["sysfs", "readonly-bind"])
def test_local_server_refuses_an_unwritable_package_dir(kind, request, state, run_module):
    path, why = _unwritable(request, kind)
    res = run_module(local_server, {"state_dir": state, "package_dir": path, "auth_actions": []})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"] == (
        f"Package directory {path} is not writable ({why}); uploads would fail. "
        "Fix its permissions or choose another path."
    )
    assert ls.read_state(state) is None  # nothing was started


def test_local_server_package_dir_that_cannot_be_created(state, tmp_path, run_module):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = run_module(local_server, {"state_dir": state, "package_dir": str(afile / "packages"), "auth_actions": []})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"] == f"Cannot create package directory {afile}/packages: Not a directory; choose a writable path."


LOCAL_PLAY = """
- name: The deploy role's local path, once per bad input
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: pypi_ops.pypiserver.deploy
      vars:
        pypi_target: local
        pypi_password: Some-Passw0rd-123
        pypi_local_state_dir: "{{ item.state }}"
        pypi_local_package_dir: "{{ item.package_dir }}"
        pypi_local_port: "{{ item.port }}"
        pypi_local_start_timeout: 10
      loop: "{{ cases }}"
      loop_control:
        label: "{{ item.id }}"
    - name: Results
      ansible.builtin.copy:
        content: "{{ pypi_results | to_json }}"
        dest: "{{ results_file }}"
        mode: "0600"
"""


@pytest.mark.slow
def test_deploy_local_reports_the_package_dir_and_the_port_in_one_sentence(tmp_path):
    """The deploy role (local target) through ansible-playbook, one deploy per case in one run: the reason recorded
    for deploy is the module's sentence, and no server was left running."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cases = [
            {"id": "unwritable", "package_dir": "/sys", "port": 0},
            {"id": "file-as-dir", "package_dir": str(afile), "port": 0},
            {"id": "port-in-use", "package_dir": str(tmp_path / "pkgs"), "port": port},
        ]
        for case in cases:
            case["state"] = str(tmp_path / "state" / case["id"])
        results_file = tmp_path / "results.json"
        playbook = tmp_path / "deploy_local_cases.yml"
        playbook.write_text(textwrap.dedent(LOCAL_PLAY))
        try:
            run = run_playbook(playbook, tmp_path, {"cases": cases, "results_file": str(results_file)}, timeout=300)
        finally:
            for case in cases:
                ls.stop(case["state"])
    assert run.rc == 0, run.output[-4000:]
    deploys = [r for r in json.loads(results_file.read_text()) if r["id"] == "deploy"]
    reasons = {case["id"]: r for case, r in zip(cases, deploys, strict=True)}
    expected = {
        "unwritable": "Package directory /sys is not writable (Permission denied); uploads would fail. "
        "Fix its permissions or choose another path.",
        "file-as-dir": f"Package directory {afile} exists but is not a directory; choose another path.",
        "port-in-use": f"Port {port} on 127.0.0.1 is already in use by another process; "
        "choose another port, or 0 for a free one.",
    }
    for id_, reason in expected.items():
        assert reasons[id_]["status"] == "failed", (id_, reasons[id_])
        assert reasons[id_]["reason"] == reason, (id_, reasons[id_]["reason"])
    for case in cases:
        assert ls.read_state(case["state"]) is None, case  # nothing started


# ---------------------------------------------------------------- a malformed htpasswd entry is replaced


def test_a_malformed_htpasswd_entry_is_replaced_not_a_traceback():
    broken = b"ci:$apr1$x$y\nother:$apr1$abcdefgh$0123456789abcdefghijkl\n"
    content, changed = cred.render_htpasswd({"ci": "N3w-Passw0rd-123"}, broken)
    assert changed is True
    assert cred.htpasswd_accepts(content, "ci", "N3w-Passw0rd-123")
    assert cred.htpasswd_users(content) == ["ci"]


# ---------------------------------------------------------------- every wait: a deadline and a bounded backoff


def assert_backoff(pauses: list[float], timeout: float, cap: float) -> None:
    """The pauses of one wait loop (up to the first shorter one, the pause cut at the deadline or the next loop's
    first) grow, stay under ``cap`` and add up to no more than ``timeout``: a deadline and a bounded backoff."""
    phase = pauses[:1]
    for pause in pauses[1:]:
        if pause < phase[-1]:
            break
        phase.append(pause)
    assert len(phase) >= 3, pauses
    assert phase[-1] > phase[0], f"a fixed pause, not a backoff: {pauses}"
    assert max(phase) <= cap + 1e-9, pauses
    assert sum(phase) <= timeout + 1e-6, (sum(phase), pauses)


class Sleeps:
    """Records the pauses taken on the test's own thread; it still pauses, so behaviour is unchanged."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self._real = time.sleep
        self._thread = threading.current_thread()

    def __call__(self, seconds: float) -> None:
        if threading.current_thread() is self._thread:
            self.calls.append(seconds)
        self._real(seconds)


@pytest.fixture
def sleeps(monkeypatch):
    recorder = Sleeps()
    monkeypatch.setattr(time, "sleep", recorder)
    return recorder


def test_wait_healthy_backs_off_until_its_deadline(sleeps):
    url = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(ls.ServerError) as err:
        ls.wait_healthy(url, 2.0)
    assert err.value.msg.startswith(f"{url} did not answer 200 within 2s (last: ")
    assert_backoff(sleeps.calls, 2.0, cap=0.5)


def test_terminate_backs_off_and_ends_with_sigkill(sleeps, tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"up\n"  # the SIGTERM handler is in place
        token = ls.proc_start_token(proc.pid)
        assert ls.terminate(proc.pid, token, timeout=1.0) is True  # SIGTERM ignored for 1 s, then SIGKILL
        assert not ls.pid_alive(proc.pid, token)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_backoff(sleeps.calls, 1.0, cap=0.2)  # the SIGTERM phase; the SIGKILL phase starts again at 0.01


def test_port_forward_start_backs_off_until_its_deadline(sleeps, tmp_path):
    never = tmp_path / "never.py"
    never.write_text("import time\nprint('waiting forever', flush=True)\ntime.sleep(3600)\n")
    state = str(tmp_path / "pf")
    try:
        with pytest.raises(pf.ServerError) as err:
            pf.start(
                state,
                namespace="pypi",
                target="svc/pypiserver",
                remote_port=8080,
                timeout=2.0,
                argv_override=[sys.executable, str(never)],
            )
    finally:
        pf.stop(state)
    assert "did not accept connections on 127.0.0.1:" in err.value.msg and "within 2s" in err.value.msg
    assert_backoff(sleeps.calls, 2.0, cap=0.5)  # then terminate()'s own pauses, from 0.01 again


def test_prove_gone_backs_off_until_its_wait(pypiserver, tmp_path, sleeps):
    """A file that stays: prove_gone looks again with growing pauses until ``wait``, then reports it."""
    sleeps.calls.clear()  # the server fixture's own start-up wait is not this loop
    wheel = traffic.synthetic_wheel(str(tmp_path), "stays", "1.0.0")
    os.makedirs(pypiserver.package_dir, exist_ok=True)
    os.replace(wheel["path"], os.path.join(pypiserver.package_dir, wheel["filename"]))
    opts = httputil.ClientOptions(None, None, True, None, 5.0, 30.0)
    session = httputil.make_session(opts)
    try:
        files = remove.list_files(session, pypiserver.simple_url, "stays", opts)
        group = remove.plan_project("stays", files, ())[0]
        left, _served = remove.prove_gone(session, pypiserver.simple_url, group, opts, wait=2.0)
    finally:
        session.close()
    assert left == [wheel["filename"]]
    assert_backoff(sleeps.calls, 2.0, cap=2.0)


def test_credentials_prove_backs_off_until_its_wait(auth_pypiserver):
    """The proof polls with a pause that doubles up to 2 s, and gives up with one sentence at the deadline."""
    pauses: list[float] = []
    opts = httputil.ClientOptions(None, None, True, None, 5.0, 30.0)
    with pytest.raises(cred.CredentialsError) as err:
        cred.prove(
            auth_pypiserver.url,
            auth_pypiserver.username,
            opts,
            ["update"],
            password="not-the-password-1",
            wait=2.0,
            sleep=lambda s: (pauses.append(s), time.sleep(s)),
        )
    _one_sentence(err.value.msg)
    assert err.value.msg.startswith("After ")
    assert_backoff(pauses, 2.0, cap=2.0)


def test_request_timeouts_never_outlast_a_wait():
    assert kw.request_timeout(None) == kw.REQUEST_TIMEOUT
    assert kw.request_timeout(3.0) == (3.0, 3.0)
    assert kw.request_timeout(0.0) == (1.0, 1.0)  # at least a second to get an answer at the deadline
    assert kw.request_timeout(600.0) == kw.REQUEST_TIMEOUT
