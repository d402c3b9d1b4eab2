"""package_install against real pypiserver processes, with real wheels and the real pip (no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install, provenance
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.modules import package_install

NAME = "pypi-ops-install-probe"
IMPORT = "pypi_ops_install_probe"


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[str, dict]:
    """Wheels of three releases, built once per session: {version: build result}."""
    dest = str(tmp_path_factory.mktemp("install-dists"))
    built = {}
    for version in ("1.0.0", "1.1.0", "2.0.0rc1"):
        built[version] = pb.build(None, dest, probe=pb.probe_spec(NAME, version, payload_size=4096), formats=["wheel"])
    return built


def publish(server, *records: dict) -> None:
    """'Upload' by dropping the files into the served directory (pypiserver --backend simple-dir lists it live)."""
    os.makedirs(server.package_dir, exist_ok=True)
    for record in records:
        shutil.copy(record["path"], server.package_dir)


def install_args(server, work_dir, **extra) -> dict:
    return dict({"index_url": server.simple_url, "name": NAME, "work_dir": str(work_dir), "retries": 0}, **extra)


def assert_clean(work_dir) -> None:
    assert os.listdir(work_dir) == [], "the throwaway venv was left behind"


def test_install_exact_version(pypiserver, dists, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"], dists["1.1.0"]["wheel"])
    wheel = dists["1.0.0"]["wheel"]
    res = run_module(
        package_install,
        install_args(
            pypiserver, tmp_path, version="1.0.0", expected_version="1.0.0", expected_sha256=wheel["sha256"].upper()
        ),
    )
    assert not res.failed, res
    assert res["changed"] is False
    assert res["requirement"] == f"{NAME}==1.0.0"
    assert res["installed_version"] == "1.0.0"
    assert res["imported_version"] == "1.0.0"
    assert res["import_name"] == IMPORT
    assert res["sha256"] == wheel["sha256"]
    assert res["sha256_source"] == "pip-report"
    assert res["filename"] == wheel["filename"]
    assert res["resolved_url"].startswith(f"http://127.0.0.1:{pypiserver.port}/")
    assert res["import_file"].startswith(str(tmp_path))
    assert res["import_file"].endswith(f"/site-packages/{IMPORT}/__init__.py")
    # The isolation flags are really on pip's command line, with a single index and no other source.
    cmd = res["cmd"]
    assert cmd[cmd.index("--index-url") + 1] == pypiserver.simple_url
    assert "--isolated" in cmd and ":all:" in cmd
    assert not {"--extra-index-url", "--find-links", "-f"} & set(cmd)
    assert_clean(tmp_path)


def test_latest_and_pre(pypiserver, dists, tmp_path, run_module):
    publish(pypiserver, *(d["wheel"] for d in dists.values()))
    latest = run_module(package_install, install_args(pypiserver, tmp_path))
    assert not latest.failed, latest
    assert latest["requirement"] == NAME
    assert latest["imported_version"] == "1.1.0"

    pre = run_module(package_install, install_args(pypiserver, tmp_path, pre=True, expected_version="2.0.0rc1"))
    assert not pre.failed, pre
    assert pre["imported_version"] == "2.0.0rc1"
    assert pre["sha256"] == dists["2.0.0rc1"]["wheel"]["sha256"]
    assert "--pre" in pre["cmd"]
    assert_clean(tmp_path)


def test_missing_version_fails_clearly(pypiserver, dists, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"])
    res = run_module(package_install, install_args(pypiserver, tmp_path, version="9.9.9"))
    assert res.failed
    assert f"{NAME}==9.9.9 is not on the index {pypiserver.simple_url} (pip looked only there" in res["msg"]
    assert "1.0.0" in res["msg"]  # the versions pip saw
    assert "Traceback" not in res["msg"]
    assert any("No matching distribution" in line for line in res["pip_output"])
    assert_clean(tmp_path)


@pytest.mark.parametrize("route", ["global-config-file", "environment"])
def test_isolation_from_users_pip_setup(pypiserver_factory, dists, tmp_path, monkeypatch, run_module, route):
    """Server A (under test) lacks the package, B has it and is reachable through the user's pip setup."""
    server_a = pypiserver_factory()
    server_b = pypiserver_factory()
    publish(server_b, dists["1.0.0"]["wheel"])
    if route == "global-config-file":
        xdg = tmp_path / "xdg"
        (xdg / "pip").mkdir(parents=True)
        (xdg / "pip" / "pip.conf").write_text(f"[global]\nextra-index-url = {server_b.simple_url}\n")
        monkeypatch.setenv("XDG_CONFIG_DIRS", str(xdg))
        # The user's own ~/.config/pip/pip.conf would shadow the global extra-index-url; keep it out of the control.
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-user-config"))
    else:
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", server_b.simple_url)
        monkeypatch.setenv("PIP_FIND_LINKS", server_b.package_dir)

    # Control: a plain pip with this environment DOES get the package from B, so the trap is real.
    control = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d",
         str(tmp_path / "control"), f"{NAME}==1.0.0", "--index-url", server_a.simple_url],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert control.returncode == 0, control.stdout + control.stderr
    assert os.listdir(tmp_path / "control") == [dists["1.0.0"]["wheel"]["filename"]]

    work = tmp_path / "work"
    res = run_module(package_install, install_args(server_a, work, version="1.0.0"))
    assert res.failed, res
    assert "is not on the index" in res["msg"] and server_a.simple_url in res["msg"]
    assert_clean(work)


def test_file_resolved_elsewhere_fails(pypiserver_factory, dists, tmp_path, run_module):
    """A redirects missing projects to B (pypiserver --fallback-url): pip gets the file from B, which must fail."""
    server_b = pypiserver_factory()
    publish(server_b, dists["1.0.0"]["wheel"])
    server_a = pypiserver_factory(fallback_url=server_b.simple_url)
    res = run_module(package_install, install_args(server_a, tmp_path, version="1.0.0"))
    assert res.failed, res
    assert f"to http://127.0.0.1:{server_b.port}/simple/" in res["msg"] and "another origin" in res["msg"]
    assert "--disable-fallback" in res["msg"]
    assert f"127.0.0.1:{server_b.port}" in res["resolved_url"]
    assert_clean(tmp_path)


def test_auth_server(pypiserver_factory, dists, tmp_path, run_module):
    password = 's3 cr"et#\\pw'  # blanks, quote, hash and backslash: exercises netrc quoting
    server = pypiserver_factory(auth_actions=("download", "list"), username="ci-user", password=password)
    publish(server, dists["1.0.0"]["wheel"])

    ok = run_module(
        package_install, install_args(server, tmp_path, version="1.0.0", username="ci-user", password=password)
    )
    assert not ok.failed, ok
    assert ok["imported_version"] == "1.0.0"
    assert ok["sha256"] == dists["1.0.0"]["wheel"]["sha256"]
    assert password not in json.dumps(ok)
    assert not any(password in arg or "ci-user" in arg for arg in ok["cmd"])
    assert_clean(tmp_path)

    anonymous = run_module(package_install, install_args(server, tmp_path, version="1.0.0"))
    assert anonymous.failed
    assert "wants credentials (HTTP 401)" in anonymous["msg"] and "none were given" in anonymous["msg"]
    assert_clean(tmp_path)

    wrong = run_module(
        package_install, install_args(server, tmp_path, version="1.0.0", username="ci-user", password="nope")
    )
    assert wrong.failed
    assert "refused the credentials for user 'ci-user'" in wrong["msg"]
    assert "nope" not in json.dumps({k: v for k, v in wrong.items() if k != "invocation"})
    assert_clean(tmp_path)


def test_expected_version_and_sha256_mismatch(pypiserver, dists, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"])
    res = run_module(package_install, install_args(pypiserver, tmp_path, version="1.0.0", expected_version="1.0.1"))
    assert res.failed
    assert "__version__ is '1.0.0', expected '1.0.1'" in res["msg"]
    assert res["imported_version"] == "1.0.0"

    res = run_module(package_install, install_args(pypiserver, tmp_path, version="1.0.0", expected_sha256="0" * 64))
    assert res.failed
    assert "expected " + "0" * 64 in res["msg"]
    assert_clean(tmp_path)


def test_keep_venv_and_insecure_flag(pypiserver, dists, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"])
    res = run_module(
        package_install, install_args(pypiserver, tmp_path, version="1.0.0", keep_venv=True, validate_certs=False)
    )
    assert not res.failed, res
    assert res["cmd"][res["cmd"].index("--trusted-host") + 1] == f"127.0.0.1:{pypiserver.port}"
    assert "validate_certs is false" in json.dumps(res.get("warnings", []))
    venv = res["venv_dir"]
    assert os.path.isfile(os.path.join(venv, "bin", "python"))
    assert res["import_file"].startswith(venv + os.sep)
    assert not os.path.exists(os.path.join(os.path.dirname(venv), ".auth")), "the netrc must never be kept"
    shutil.rmtree(os.path.dirname(venv))


def test_index_without_hash_fragments(pypiserver_factory, dists, tmp_path, run_module):
    """pypiserver --hash-algo off: links carry no #sha256=; the sha256 must still be the served file's."""
    server = pypiserver_factory(hash_algo="off")
    publish(server, dists["1.0.0"]["wheel"])
    res = run_module(package_install, install_args(server, tmp_path, version="1.0.0"))
    assert not res.failed, res
    assert res["sha256"] == dists["1.0.0"]["wheel"]["sha256"]
    # The streaming fallback agrees with whatever pip reported.
    assert install.fetch_sha256(res["resolved_url"], http.ClientOptions.from_params({})) == res["sha256"]
    assert_clean(tmp_path)


def test_unreachable_index(tmp_path, run_module):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = run_module(
        package_install,
        {"index_url": f"http://127.0.0.1:{port}/simple/", "name": NAME, "work_dir": str(tmp_path), "retries": 0},
    )
    assert res.failed
    assert "unreachable" in res["msg"] and "Connection refused" in res["msg"]
    assert_clean(tmp_path)


def test_check_mode_installs_nothing(pypiserver, tmp_path, run_module):
    res = run_module(
        package_install,
        install_args(pypiserver, tmp_path, version="1.0.0", password="pw", username="u"),
        check_mode=True,
    )
    assert not res.failed, res
    assert res["skipped"] is True and res["changed"] is False
    assert_clean(tmp_path)


def test_helpers():
    assert install.split_credentials("https://u%40x:p%3Aw@h.example:8443/simple/") == (
        "https://h.example:8443/simple/", "u@x", "p:w"
    )  # fmt: skip
    assert provenance.origin("https://H.example/simple/") == ("https", "h.example", 443)
    assert install.netrc_token("plain") == "plain"
    assert install.netrc_token('a "b"') == '"a \\"b\\""'
    assert install.netrc_token("") == '""'
    # pip's own words for bytes that do not match the index's #sha256 fragment (pypiserver cannot be made to lie).
    pip_text = (
        "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n    x.whl:\n  Expected sha256 aa"
    )
    spec = pr.InstallSpec("http://127.0.0.1:1/simple/", NAME, "1.0.0")
    msg = pr.explain_pip_failure(pip_text, spec, spec.index_url, http.ClientOptions.from_params({}))
    assert "sha256 differs from the hash in its own index page" in msg


def test_index_of_takes_the_urls_credentials_only_where_none_were_given():
    given = http.ClientOptions.from_params({"username": "ci", "password": ""})
    index = install.index_of("https://u:p%40ss@h.example/simple/", given)
    assert (index.url, index.safe, index.host, index.problem) == (
        "https://h.example/simple/", "https://h.example/simple/", "h.example", None
    )  # fmt: skip
    assert (index.opts.username, index.opts.password) == ("ci", "")  # an explicit empty password stays empty
    blank = install.index_of("https://u:p%40ss@h.example/simple/", given, blank_is_unset=True)
    assert (blank.opts.username, blank.opts.password) == ("ci", "p@ss")
    none = install.index_of("https://u:pw@h.example/simple/", http.ClientOptions.from_params({}))
    assert (none.opts.username, none.opts.password) == ("u", "pw") and none.opts.has_credentials
    bad = install.index_of("ftp://u:pw@h.example/simple/", http.ClientOptions.from_params({}))
    assert bad.problem == (
        "index_url 'ftp://h.example/simple/' is not an http(s) URL; give the simple index, e.g. "
        "http://host:8080/simple/."
    )


def test_work_dir_is_removed_even_when_the_body_fails(tmp_path):
    parent = tmp_path / "not-yet"
    with pytest.raises(RuntimeError), install.work_dir("pypi_ops-t-", str(parent)) as work:
        assert os.path.dirname(work.path) == str(parent) and os.stat(work.auth).st_mode & 0o777 == 0o700
        secret = install.netrc_for(work.auth, "h.example", http.ClientOptions.from_params({"password": "pw"}))
        assert open(secret, encoding="utf-8").read() == 'machine h.example login "" password pw\n'
        raise RuntimeError("the install failed")
    assert os.listdir(parent) == []
    with install.work_dir("pypi_ops-t-", str(parent), keep=True) as work:
        empty = install.netrc_for(work.auth, "h.example", http.ClientOptions.from_params({"username": "u"}))
        assert open(empty, encoding="utf-8").read() == ""  # a user name alone is no credential: an empty netrc
    assert os.listdir(work.path) == [] and os.path.isdir(work.path)  # kept, without its .auth


def test_failure_wording_is_shared_by_the_clients():
    opts = http.ClientOptions.from_params({})
    assert install.timed_out("pip install", "p==1", "http://i/simple/", 30, opts, " (timeout)") == (
        "pip install p==1 from http://i/simple/ did not finish within 30s (timeout)."
    )
    assert install.with_tail("pip failed.", "uv", ["a", "b"]) == "pip failed. Last lines of uv's output:\na\nb"
    spec = install.InstallSpec("http://i/simple/", NAME, "1.0.0", uploaded_prior_to="2026-01-01T00:00:00Z")
    assert install.cutoff_failure("uv", "warning: f.whl is missing an upload date", spec, "http://i/simple/") == (
        "no_upload_time",
        f"uv --exclude-newer 2026-01-01T00:00:00Z found no file of {NAME}==1.0.0 on http://i/simple/ it could "
        "install: the index gives no upload date (PEP 700 upload-time), and uv drops every file without one.",
    )
    assert install.cutoff_failure("pip", "anything", spec._replace(uploaded_prior_to=None), "x") == (None, None)


# ---------------------------------------------------------------- client uv (uv venv + uv pip install, the real uv)


def test_uv_install_exact_version_has_the_pip_result_shape(pypiserver, dists, uv_bin, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"], dists["1.1.0"]["wheel"])
    wheel = dists["1.0.0"]["wheel"]
    exact = dict(version="1.0.0", expected_version="1.0.0", expected_sha256=wheel["sha256"])
    res = run_module(package_install, install_args(pypiserver, tmp_path, client="uv", uv=uv_bin, **exact))
    assert not res.failed, res
    assert res["client"] == "uv" and res["client_missing"] is False and res["uv"] == uv_bin
    assert res["installed_version"] == "1.0.0" and res["imported_version"] == "1.0.0"
    assert res["filename"] == wheel["filename"]
    assert res["resolved_url"] == f"{pypiserver.url}packages/{wheel['filename']}"
    assert res["origin"] == f"http://127.0.0.1:{pypiserver.port}"
    assert res["requests"] and all(u.startswith(pypiserver.url) for u in res["requests"])
    assert (res["sha256"], res["sha256_source"]) == (wheel["sha256"], "index-hash-checked-by-uv")
    assert res["import_file"].startswith(str(tmp_path)) and res["import_file"].endswith(f"/{IMPORT}/__init__.py")
    cmd = res["cmd"]
    assert cmd[0] == uv_bin and cmd[cmd.index("--default-index") + 1].endswith("=" + pypiserver.simple_url)
    assert_clean(tmp_path)

    # The same install with pip: every key pip returns, uv returns too, so role tasks can treat both alike.
    pip = run_module(package_install, install_args(pypiserver, tmp_path, **exact))
    assert not pip.failed, pip
    assert pip["client"] == "pip" and pip["client_missing"] is False and pip["origin"] == res["origin"]
    assert set(pip) <= set(res), set(pip) - set(res)
    for key in ("requirement", "index_url", "resolved_url", "filename", "sha256", "installed_version", "import_name"):
        assert pip[key] == res[key], key
    assert_clean(tmp_path)


def test_uv_unpinned_install_of_a_newer_version_fails_naming_both(pypiserver, dists, uv_bin, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"], dists["1.1.0"]["wheel"])
    res = run_module(
        package_install, install_args(pypiserver, tmp_path, client="uv", uv=uv_bin, expected_version="1.0.0")
    )
    assert res.failed and res["client_missing"] is False
    assert res["msg"].startswith("uv resolved ") and " 1.1.0, expected 1.0.0: the index " in res["msg"]
    assert res["installed_version"] == "1.1.0" and "imported_version" not in res  # the import check did not run
    assert res["resolved_url"].endswith(dists["1.1.0"]["wheel"]["filename"])
    assert_clean(tmp_path)


def test_uv_failed_install_reports_uv_output(pypiserver, dists, uv_bin, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"])
    res = run_module(package_install, install_args(pypiserver, tmp_path, client="uv", uv=uv_bin, version="9.9.9"))
    assert res.failed and res["client_missing"] is False and res["client"] == "uv"
    assert f"{NAME}==9.9.9 is not on the index" in res["msg"]
    assert res["uv_output"] and "pip_output" not in res
    assert_clean(tmp_path)


def test_uv_install_with_credentials_and_without_hash_fragments(
    pypiserver_factory, dists, uv_bin, tmp_path, run_module
):
    password = "uv-Pa55-word"
    server = pypiserver_factory(
        auth_actions=("download", "list"), username="ci-user", password=password, hash_algo="off"
    )
    publish(server, dists["1.0.0"]["wheel"])
    creds = dict(username="ci-user", password=password)
    res = run_module(package_install, install_args(server, tmp_path, client="uv", uv=uv_bin, version="1.0.0", **creds))
    assert not res.failed, res
    # No #sha256= on the index: the served file is hashed instead, and it is the built wheel.
    assert (res["sha256"], res["sha256_source"]) == (dists["1.0.0"]["wheel"]["sha256"], "download")
    assert password not in json.dumps({k: v for k, v in res.items() if k != "invocation"})
    wrong = run_module(
        package_install,
        install_args(server, tmp_path, client="uv", uv=uv_bin, version="1.0.0", expected_sha256="0" * 64, **creds),
    )
    assert wrong.failed and "expected " + "0" * 64 in wrong["msg"]
    assert_clean(tmp_path)


def test_uv_missing_is_client_missing_not_a_failed_install(pypiserver, dists, tmp_path, run_module):
    publish(pypiserver, dists["1.0.0"]["wheel"])
    nowhere = str(tmp_path / "no" / "uv")
    work = tmp_path / "work"
    for check_mode in (False, True):
        res = run_module(
            package_install,
            install_args(pypiserver, work, client="uv", uv=nowhere, version="1.0.0"),
            check_mode=check_mode,
        )
        assert res.failed and res["client_missing"] is True, res
        assert res["msg"].startswith(f"uv is not at {nowhere} (no executable file there); install it on the controller")
        assert "pip install uv" in res["msg"] and "\n" not in res["msg"]
        assert "installed_version" not in res
    assert not work.exists() or os.listdir(work) == []
    # An install that fails for another reason is not a missing client.
    absent = run_module(package_install, install_args(pypiserver, work, version="9.9.9"))
    assert absent.failed and absent["client_missing"] is False and absent["client"] == "pip"
