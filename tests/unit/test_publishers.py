"""module_utils.publishers without running the tools: argv and env builders (no secret in any argv; the documented
variables, checked against each tool's source), the throwaway project, and the parsers on texts measured from real
runs of poetry 2.5.1, pdm 2.29.4 and hatch 1.18.2 against a real pypiserver 2.4.2 (409 duplicate, 403 wrong
password, 401 no credentials, 413 from tests/faultproxy.py FaultProxy(max_body=1000), connection refused).
The tools themselves run in tests/integration/test_publishers.py.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import publishers as pub
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.uv_runner import ANONYMOUS_USER

USER, PASSWORD = "ci-user", "pub-S3cret-pass"
URL = "http://127.0.0.1:8080/"


def opts(username=None, password=None, **extra) -> http.ClientOptions:
    return http.ClientOptions(username, password, True, None, 5.0, 30.0)._replace(**extra)


@pytest.fixture
def wheel(tmp_path):
    path = tmp_path / "pypi_ops_pub_probe-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pypi_ops_pub_probe-1.2.3.dist-info/METADATA", "Metadata-Version: 2.1\nName: pypi-ops-pub-probe\n")
    return str(path)


# ---------------------------------------------------------------- argv and environment


@pytest.mark.parametrize("tool", pub.TOOLS)
def test_no_secret_in_argv_and_credentials_in_the_documented_variables(tool, tmp_path, wheel):
    run = pub.plan(tool, f"/opt/{tool}", str(tmp_path), URL, wheel, opts(USER, PASSWORD))
    assert PASSWORD not in " ".join(run.argv) and URL not in " ".join(run.argv), run.argv
    names = {
        "poetry": (
            "POETRY_HTTP_BASIC_PYPIOPS_USERNAME",
            "POETRY_HTTP_BASIC_PYPIOPS_PASSWORD",
            "POETRY_REPOSITORIES_PYPIOPS_URL",
        ),
        "pdm": ("PDM_PUBLISH_USERNAME", "PDM_PUBLISH_PASSWORD", "PDM_PUBLISH_REPO"),
        "hatch": ("HATCH_INDEX_USER", "HATCH_INDEX_AUTH", "HATCH_INDEX_REPO"),
    }[tool]
    assert [run.env[n] for n in names] == [USER, PASSWORD, URL]
    # every config, cache and data directory the tool is told about is inside the throwaway directory
    dirs = {
        k: v for k, v in run.env.items() if k.endswith(("_DIR", "_FILE", "_CONFIG", "HOME")) and k != "PIP_CONFIG_FILE"
    }
    assert dirs and all(v.startswith(str(tmp_path)) for v in dirs.values()), dirs
    assert run.env["PYTHON_KEYRING_BACKEND"] == "keyring.backends.null.Keyring"
    assert os.path.getsize(run.env["NETRC"]) == 0
    assert run.cwd.startswith(str(tmp_path))


def test_each_tool_is_told_no_keyring_no_prompt_no_venv(tmp_path, wheel):
    poetry = pub.plan("poetry", "poetry", str(tmp_path / "p"), URL, wheel, opts(USER, PASSWORD))
    assert poetry.env["POETRY_KEYRING_ENABLED"] == "false" and "--no-interaction" in poetry.argv
    assert poetry.argv[poetry.argv.index("--repository") + 1] == pub.REPOSITORY
    pdm = pub.plan("pdm", "pdm", str(tmp_path / "d"), URL, wheel, opts(USER, PASSWORD), python="/usr/bin/python3")
    assert pdm.env["PDM_NON_INTERACTIVE"] == "1" and pdm.env["PDM_CHECK_UPDATE"] == "false"
    assert (
        pdm.env["PDM_USE_VENV"] == "false" and pdm.env["PDM_PYTHON"] == "/usr/bin/python3" and "--no-build" in pdm.argv
    )
    hatch = pub.plan("hatch", "hatch", str(tmp_path / "h"), URL, wheel, opts(USER, PASSWORD))
    assert "--no-prompt" in hatch.argv and hatch.argv[-1] == wheel
    assert os.path.isfile(hatch.env["HATCH_CONFIG"]) and os.path.getsize(hatch.env["HATCH_CONFIG"]) == 0


def test_without_a_password_poetry_sends_nothing_and_pdm_hatch_send_the_placeholder(tmp_path, wheel):
    poetry = pub.plan("poetry", "poetry", str(tmp_path / "p"), URL, wheel, opts(USER, None))
    assert not [k for k in poetry.env if k.startswith("POETRY_HTTP_BASIC_")]
    pdm = pub.plan("pdm", "pdm", str(tmp_path / "d"), URL, wheel, opts())
    assert pdm.env["PDM_PUBLISH_USERNAME"] == pdm.env["PDM_PUBLISH_PASSWORD"] == ANONYMOUS_USER
    hatch = pub.plan("hatch", "hatch", str(tmp_path / "h"), URL, wheel, opts())
    assert hatch.env["HATCH_INDEX_USER"] == hatch.env["HATCH_INDEX_AUTH"] == ANONYMOUS_USER


def test_tls_settings_reach_each_tool(tmp_path, wheel):
    ca = opts(USER, PASSWORD, ca_path="/etc/ca.pem")
    assert (
        pub.plan("poetry", "poetry", str(tmp_path / "p"), URL, wheel, ca).env["POETRY_CERTIFICATES_PYPIOPS_CERT"]
        == "/etc/ca.pem"
    )
    assert pub.plan("pdm", "pdm", str(tmp_path / "d"), URL, wheel, ca).env["PDM_PUBLISH_CA_CERTS"] == "/etc/ca.pem"
    assert pub.plan("hatch", "hatch", str(tmp_path / "h"), URL, wheel, ca).env["HATCH_INDEX_CA_CERT"] == "/etc/ca.pem"
    insecure = opts(USER, PASSWORD, validate_certs=False)
    run = pub.plan("poetry", "poetry", str(tmp_path / "p2"), URL, wheel, insecure)
    with open(os.path.join(run.env["POETRY_CONFIG_DIR"], "config.toml"), encoding="utf-8") as handle:
        assert "verify = false" in handle.read()
    assert "--no-verify-ssl" in pub.plan("pdm", "pdm", str(tmp_path / "d2"), URL, wheel, insecure).argv
    got = pub.publish(None, "hatch", URL, wheel, insecure, 30, "/nonexistent/hatch")
    assert got.outcome == "error" and "no switch to turn TLS verification off" in got.detail


def test_scrub_removes_inherited_tool_variables_and_ca_overrides_without_verification(monkeypatch):
    monkeypatch.setenv("POETRY_HTTP_BASIC_PYPIOPS_PASSWORD", "from-the-controller")
    monkeypatch.setenv("HATCH_INDEX_REPO", "https://upload.pypi.org/legacy/")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/other.pem")
    argv = pub.scrub(["poetry"], {"POETRY_KEYRING_ENABLED": "false"}, opts())
    assert argv[0] == "env" and "POETRY_HTTP_BASIC_PYPIOPS_PASSWORD" in argv and "HATCH_INDEX_REPO" in argv
    assert "REQUESTS_CA_BUNDLE" not in argv
    assert "REQUESTS_CA_BUNDLE" in pub.scrub(["poetry"], {}, opts(validate_certs=False))


def test_the_throwaway_project_has_the_files_name_and_version(tmp_path, wheel):
    project = pub.stage_project(str(tmp_path / "work"), wheel)
    with open(os.path.join(project, "pyproject.toml"), encoding="utf-8") as handle:
        text = handle.read()
    assert 'name = "pypi-ops-pub-probe"' in text and 'version = "1.2.3"' in text
    staged = os.path.join(project, "dist", os.path.basename(wheel))
    assert os.listdir(os.path.join(project, "dist")) == [os.path.basename(wheel)]
    assert os.path.samefile(staged, wheel) or open(staged, "rb").read() == open(wheel, "rb").read()


def test_a_file_whose_name_is_no_dist_name_is_invalid_without_running_anything(tmp_path):
    bad = tmp_path / "not-a-wheel.whl"
    bad.write_bytes(b"x")
    got = pub.publish(None, "poetry", URL, str(bad), opts(USER, PASSWORD), 30, "/nonexistent/poetry")
    assert got.outcome == "invalid_dist" and "'not-a-wheel'" in got.detail, got


# ---------------------------------------------------------------- parsers on measured texts

# (key, rc, text, outcome, status, said), captured from the real runs described above
MEASURED = [
    (r["key"], r["rc"], r["text"], r["outcome"], r["status"], r["said"])
    for r in json.loads((Path(__file__).parent / "data" / "publish_texts_measured.json").read_text())
]


@pytest.mark.parametrize(("key", "rc", "text", "outcome", "status", "said"), MEASURED, ids=[m[0] for m in MEASURED])
def test_parsers_on_measured_texts(key, rc, text, outcome, status, said):
    tool = key.split("-")[0]
    got = pub.parse(tool, rc, text, opts(USER, PASSWORD))
    assert (got.outcome, got.status) == (outcome, status), got
    assert said in got.detail and "━" not in got.detail and "\n" not in got.detail, got


def test_refusals_of_the_placeholder_say_so():
    text = MEASURED[[m[0] for m in MEASURED].index("pdm-wrong")][2]
    got = pub.parse("pdm", 1, text, opts())
    assert got.outcome == "forbidden" and ANONYMOUS_USER in got.detail
    refused = pub.parse_pdm(
        1,
        "Getting PyPI token via OIDC...\nFailed to get PyPI token via OIDC\n"
        "[PdmUsageError]: Username and password are required\n",
    )
    assert refused.outcome == "unauthorized" and "sent nothing" in refused.detail
    assert pub.parse_hatch(1, "Missing required option: user\n").outcome == "unauthorized"


def test_hatch_skipping_a_listed_file_is_exists_not_uploaded():
    # hatch reads <repo>+simple/<name>/ first (a devpi layout) and, when it lists the file, exits 0 having sent nothing
    got = pub.parse_hatch(0, "dist/pypi_ops_pub_probe-1.2.3-py3-none-any.whl ... already exists\n")
    assert got.outcome == "exists", got


def test_unknown_texts_are_errors_not_passes():
    for tool in pub.TOOLS:
        assert pub.parse(tool, 1, "something new and strange", opts(USER, PASSWORD)).outcome == "error"


def test_unlisted_is_an_outcome_and_its_sentence_names_the_client():
    assert "unlisted" in upload.OUTCOMES
    got = upload.Outcome(
        "unlisted", None, "the page of x on http://h/simple/ lists no file, not x-1.0-py3-none-any.whl."
    )
    msg = upload.explain("x-1.0-py3-none-any.whl", got, ["uploaded"], client="hatch publish")
    assert msg.startswith(
        "Upload of x-1.0-py3-none-any.whl: expected uploaded, got unlisted: hatch publish said it uploaded"
    )
    assert "but the index does not list it (or lists other bytes)" in msg and "lists no file" in msg
    assert "\n" not in msg
