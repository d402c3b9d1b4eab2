"""lock_install's pure parts: the throwaway project and environment hold no secret outside the environment's
credential variables, argv never holds one, and the lock parsers read real lock files (captured from uv 0.13.9,
poetry 2.5.1 and pdm 2.29.4 against pypiserver 2.4.2)."""

from __future__ import annotations

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import lock_install as li

SECRET = "s3cr3t-Pa55-unit"
INDEX = "http://127.0.0.1:38081/simple/"
SHA = "3504a058c9399fd2dae4c324835b7fd0088848618cbcda6675d91b58afe9de58"
FILE = "pypiops_lockprobe-1.0.0-py3-none-any.whl"
OPTS = http.ClientOptions("ci-user", SECRET, True, None, 5, 30)
SPEC = install.InstallSpec(index_url=INDEX, name="pypiops-lockprobe", version="1.0.0")

UV_LOCK = f"""version = 1
revision = 5
requires-python = ">=3.11"

[[package]]
name = "pypi-ops-lock-probe"
version = "0.0.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "pypiops-lockprobe" }},
]

[[package]]
name = "pypiops-lockprobe"
version = "1.0.0"
source = {{ registry = "{INDEX}" }}
wheels = [
    {{ url = "http://127.0.0.1:38081/packages/{FILE}", hash = "sha256:{SHA}" }},
]
"""
POETRY_LOCK = f"""[[package]]
name = "pypiops-lockprobe"
version = "1.0.0"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = [
    {{file = "{FILE}", hash = "sha256:{SHA}"}},
]

[package.source]
type = "legacy"
url = "http://127.0.0.1:38081/simple"
reference = "pypiops"

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
"""
PDM_LOCK = f"""[metadata]
groups = ["default"]
strategy = ["inherit_metadata", "static_urls"]
lock_version = "4.5.1"

[[package]]
name = "pypiops-lockprobe"
version = "1.0.0"
summary = ""
groups = ["default"]
files = [
    {{url = "http://127.0.0.1:38081/packages/{FILE}", hash = "sha256:{SHA}"}},
]
"""


@pytest.mark.parametrize("client", li.CLIENTS)
def test_project_files_and_argv_hold_no_secret(client, tmp_path):
    project, private = tmp_path / "p", tmp_path / "auth"
    project.mkdir()
    private.mkdir()
    li.write_project(client, str(project), str(private), SPEC, INDEX, "3.11", OPTS)
    written = [p for p in (*project.rglob("*"), *private.rglob("*")) if p.is_file()]
    assert written and all(SECRET not in p.read_text() for p in written)
    text = (project / "pyproject.toml").read_text()
    assert '"pypiops-lockprobe==1.0.0"' in text and 'requires-python = ">=3.11"' in text
    config = text if client != "uv-lock" else (private / "uv.toml").read_text()
    assert INDEX in config and config.count("url = ") == 1  # the index under test is the only one
    tool = "/bin/" + li.PROGRAM[client]
    argvs = [
        li.lock_argv(client, tool, "/usr/bin/python3", INDEX, SPEC, OPTS),
        li.install_argv(client, tool, "/usr/bin/python3", INDEX, OPTS),
    ]
    assert all(SECRET not in " ".join(a) and "ci-user" not in " ".join(a) for a in argvs)


@pytest.mark.parametrize(
    ("client", "user_var", "password_var"),
    [
        ("uv-lock", "UV_INDEX_PYPIOPS_USERNAME", "UV_INDEX_PYPIOPS_PASSWORD"),
        ("poetry", "POETRY_HTTP_BASIC_PYPIOPS_USERNAME", "POETRY_HTTP_BASIC_PYPIOPS_PASSWORD"),
        ("pdm", "PDM_PYPI_USERNAME", "PDM_PYPI_PASSWORD"),
    ],
)
def test_credentials_travel_in_the_documented_variables_only(client, user_var, password_var, tmp_path):
    env = li.client_env(client, str(tmp_path), str(tmp_path / "auth"), OPTS, "/v/bin/python")
    assert env[user_var] == "ci-user" and env[password_var] == SECRET
    assert [k for k, v in env.items() if SECRET in v] == [password_var]
    assert env["HOME"].startswith(str(tmp_path)) and "UV_NO_CONFIG" not in env
    anonymous = li.client_env(
        client, str(tmp_path), str(tmp_path / "a2"), OPTS._replace(username=None, password=None), "/p"
    )
    assert user_var not in anonymous and password_var not in anonymous


def test_uv_reads_one_config_file_and_no_cache(tmp_path):
    env = li.client_env("uv-lock", str(tmp_path), str(tmp_path / "auth"), OPTS, "/p")
    assert env["UV_CONFIG_FILE"].endswith("uv.toml") and env["UV_NO_CACHE"] == "1"
    assert env["UV_PROJECT_ENVIRONMENT"] == str(tmp_path / ".venv")


@pytest.mark.parametrize(("client", "text"), [("uv-lock", UV_LOCK), ("poetry", POETRY_LOCK), ("pdm", PDM_LOCK)])
def test_lock_parsers_read_real_lock_files(client, text):
    entry = li.parse_lock(client, text)["pypiops-lockprobe"]
    assert entry["version"] == "1.0.0"
    assert entry["files"][0]["filename"] == FILE and entry["files"][0]["sha256"] == SHA
    if client == "poetry":
        assert entry["source"] == "http://127.0.0.1:38081/simple" and entry["files"][0]["url"] is None
    else:
        assert entry["files"][0]["url"] == f"http://127.0.0.1:38081/packages/{FILE}"
    if client == "uv-lock":
        assert entry["source"] == INDEX


def test_a_broken_lock_is_one_sentence():
    with pytest.raises(li.LockError, match="not valid TOML"):
        li.parse_lock("pdm", "[[package]\nname=")


def test_the_logs_name_the_requests():
    poetry = '[urllib3:urllib3.connectionpool] http://127.0.0.1:38081 "GET /packages/' + FILE + ' HTTP/1.1" 200 1447'
    pdm = f"unearth.preparer: Downloading <Link http://127.0.0.1:38081/packages/{FILE} (from None)> (1.4 kB)"
    uv = f"DEBUG Sending fresh GET request for: http://127.0.0.1:38081/packages/{FILE}"
    for client, text in (("poetry", poetry), ("pdm", pdm), ("uv-lock", uv)):
        assert li.downloads_of(client, text, [FILE]) == [f"http://127.0.0.1:38081/packages/{FILE}"], client


def test_a_version_mismatch_names_both_versions():
    msg = install.version_mismatch("poetry", "pypiops-lockprobe", "1.0.1", "1.0.0", INDEX)
    assert msg.startswith("poetry resolved pypiops-lockprobe 1.0.1, expected 1.0.0")


def test_dropped_credentials_needs_credentials_and_a_file_url():
    text = f"401 Client Error: Unauthorized for url: http://127.0.0.1:1/packages/{FILE}"
    assert (
        install.dropped_credentials(
            "poetry", text, "http://127.0.0.1:1/simple/", OPTS._replace(password=None, username=None)
        )
        is None
    )
    assert (
        install.dropped_credentials(
            "pdm", "HTTP 401 for http://127.0.0.1:1/simple/x/", "http://127.0.0.1:1/simple/", OPTS
        )
        is None
    )
