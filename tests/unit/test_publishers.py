"""module_utils.publishers without running the tools: argv and env builders (no secret in any argv; the documented
variables, checked against each tool's source), the throwaway project, and the parsers on texts measured from real
runs of poetry 2.5.1, pdm 2.29.4 and hatch 1.18.2 against a real pypiserver 2.4.2 (409 duplicate, 403 wrong
password, 401 no credentials, 413 from tests/faultproxy.py FaultProxy(max_body=1000), connection refused).
The tools themselves run in tests/integration/test_publishers.py.
"""

from __future__ import annotations

import os
import zipfile

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

MEASURED = [
    (
        "poetry-dup",
        1,
        '\nPublishing pypi-ops-cap-poetry (1.0.0) to pypiops\n\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 0%\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 100%\nHTTP Error 409: Conflict | b\'\\n    <!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\\n    <html>\\n        <head>\\n            <title>Error: 409 Conflict\\n            <style type="text/css">\\n              html {background-color: #eee; font-family: sans;}\\n              body {background-color: #fff; border: 1px solid #ddd;\\n                    padding: 15px; margin: 15px;}\\n              pre {background-color: #eee; border: 1px solid #ddd; padding: 5px;}\\n            \\n        \\n        <body>\\n            <h1>Error: 409 Conflict\\n            <p>Sorry, the requested URL <tt>&#039;http://127.0.0.1:48199/&#039;\\n               caused an error:\\n            <pre>Package &#039;pypi_ops_cap_poetry-1.0.0-py3-none-any.whl&#039; already exists!\\n  You may start server with `--overwrite` option.\\n        \\n    \\n\'\n',
        "exists",
        409,
        "already exists!",
    ),
    (
        "poetry-wrong",
        1,
        '\nPublishing pypi-ops-cap-poetry (1.0.0) to pypiops\n\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 0%\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 100%\nHTTP Error 403: Forbidden | b\'\\n    <!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\\n    <html>\\n        <head>\\n            <title>Error: 403 Forbidden\\n            <style type="text/css">\\n              html {background-color: #eee; font-family: sans;}\\n              body {background-color: #fff; border: 1px solid #ddd;\\n                    padding: 15px; margin: 15px;}\\n              pre {background-color: #eee; border: 1px solid #ddd; padding: 5px;}\\n            \\n        \\n        <body>\\n            <h1>Error: 403 Forbidden\\n            <p>Sorry, the requested URL <tt>&#039;http://127.0.0.1:48199/&#039;\\n               caused an error:\\n            <pre>None\\n        \\n    \\n\'\n',
        "forbidden",
        403,
        "HTTP Error 403: Forbidden",
    ),
    (
        "poetry-none-auth",
        1,
        '\nPublishing pypi-ops-cap-poetry (1.0.0) to pypiops\n\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 0%\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 100%\nHTTP Error 401: Unauthorized | b\'\\n    <!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\\n    <html>\\n        <head>\\n            <title>Error: 401 Unauthorized\\n            <style type="text/css">\\n              html {background-color: #eee; font-family: sans;}\\n              body {background-color: #fff; border: 1px solid #ddd;\\n                    padding: 15px; margin: 15px;}\\n              pre {background-color: #eee; border: 1px solid #ddd; padding: 5px;}\\n            \\n        \\n        <body>\\n            <h1>Error: 401 Unauthorized\\n            <p>Sorry, the requested URL <tt>&#039;http://127.0.0.1:48199/&#039;\\n               caused an error:\\n            <pre>None\\n        \\n    \\n\'\n',
        "unauthorized",
        401,
        "HTTP Error 401",
    ),
    (
        "poetry-413",
        1,
        "\nPublishing pypi-ops-cap-poetry (1.0.0) to pypiops\n\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 0%\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 100%\nHTTP Error 413: Request Entity Too Large | b'<html><body><h1>413 Request Entity Too Large'\n",
        "too_large",
        413,
        "413 Request Entity Too Large",
    ),
    (
        "poetry-unreach",
        1,
        "\nPublishing pypi-ops-cap-poetry (1.0.0) to pypiops\n\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 0%\nError connecting to repository\n",
        "unreachable",
        None,
        "Error connecting to repository",
    ),
    (
        "poetry-ok",
        0,
        "\nPublishing pypi-ops-cap-poetry (1.0.0) to pypiops\n\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 0%\n - Uploading pypi_ops_cap_poetry-1.0.0-py3-none-any.whl 100%",
        "uploaded",
        200,
        "",
    ),
    (
        "pdm-dup",
        1,
        "Uploading pypi_ops_cap_pdm-1.0.0-py3-none-any.whl\n 100% ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4.1/4.1 kB • 00:00 • 3.9 MB/s\nSee /tmp/cap-1_v6eaz2/.auth/home/.local/state/pdm/log/pdm-publish-cllpo1w3.log for detailed debug log.\n[PublishError]: Client error '409 Conflict' for url 'http://127.0.0.1:48199/'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/409\n",
        "exists",
        409,
        "409 Conflict",
    ),
    (
        "pdm-wrong",
        1,
        "Uploading pypi_ops_cap_pdm-1.0.0-py3-none-any.whl\n 100% ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4.1/4.1 kB • 00:00 • 4.0 MB/s\nSee /tmp/cap-spplzrbk/.auth/home/.local/state/pdm/log/pdm-publish-vxxsqlum.log for detailed debug log.\n[PublishError]: Client error '403 Forbidden' for url 'http://127.0.0.1:48199/'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/403\n",
        "forbidden",
        403,
        "403 Forbidden",
    ),
    (
        "pdm-413",
        1,
        "Uploading pypi_ops_cap_pdm-1.0.0-py3-none-any.whl\n  32% ━━━━━━━━━━━━╸                            1.3/4.1 kB • 00:01 • 1.9 MB/s\nSee /tmp/cap-uqph6b3z/.auth/home/.local/state/pdm/log/pdm-publish-a_p0rulc.log for detailed debug log.\n[PublishError]: Client error '413 Request Entity Too Large' for url 'http://127.0.0.1:35451/'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/413\n",
        "too_large",
        413,
        "413",
    ),
    (
        "pdm-unreach",
        1,
        "Uploading pypi_ops_cap_pdm-1.0.0-py3-none-any.whl\n   0%                                          0.0/4.1 kB • --:-- • ?\nSee /tmp/cap-dfegly0s/.auth/home/.local/state/pdm/log/pdm-publish-oal8ohpz.log for detailed debug log.\n[ConnectError]: [Errno 111] Connection refused\nWARNING: Add '-v' to see the detailed traceback\n",
        "unreachable",
        None,
        "Connection refused",
    ),
    (
        "pdm-ok",
        0,
        "Uploading pypi_ops_cap_pdm-1.0.0-py3-none-any.whl\n 100% ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4.1/4.1 kB • 00:00 • 4.1 MB/s\n",
        "uploaded",
        200,
        "",
    ),
    (
        "hatch-dup",
        1,
        "/tmp/upl/cap/hatch/pypi_ops_cap_hatch-1.0.0-py3-none-any.whl ... failed\nError uploading to repository: http://127.0.0.1:48199/ - Client error '409 Conflict' for url 'http://127.0.0.1:48199/'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/409\n",
        "exists",
        409,
        "409 Conflict",
    ),
    (
        "hatch-wrong",
        1,
        "/tmp/upl/cap/hatch/pypi_ops_cap_hatch-1.0.0-py3-none-any.whl ... failed\nError uploading to repository: http://127.0.0.1:48199/ - Client error '403 Forbidden' for url 'http://127.0.0.1:48199/'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/403\n",
        "forbidden",
        403,
        "403 Forbidden",
    ),
    (
        "hatch-413",
        1,
        "/tmp/upl/cap/hatch/pypi_ops_cap_hatch-1.0.0-py3-none-any.whl ... failed\nError uploading to repository: http://127.0.0.1:41619/ - Client error '413 Request Entity Too Large' for url 'http://127.0.0.1:41619/'\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/413\n",
        "too_large",
        413,
        "413",
    ),
    (
        "hatch-unreach",
        1,
        "/tmp/upl/cap/hatch/pypi_ops_cap_hatch-1.0.0-py3-none-any.whl ... failed\nError u*****loading to re*****ository: htt*****://127.0.0.1:9/ - [Errno 111] Connection refused\n",
        "unreachable",
        None,
        "Connection refused",
    ),
    (
        "hatch-ok",
        0,
        "[pypi-ops-cap-hatch]\n/tmp/upl/cap/hatch/pypi_ops_cap_hatch-1.0.0-py3-none-any.whl ... success\n\nhttp://127.0.0.1:48199/pypi-ops-cap-hatch/1.0.0/\n",
        "uploaded",
        200,
        "",
    ),
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
