"""module_utils/entrypoint.run_module, the one main() of every module: a missing library, a domain error and a bug
each end in one sentence; only the missing library and the bug carry a traceback (``exception``). ansible-core 2.19
sends and shows it only when tracebacks are on for errors (ANSIBLE_DISPLAY_TRACEBACK=error; -vvv alone does not).

Real modules run in-process (the run_module fixture of tests/conftest.py) with real arguments; where a case needs a
library to be missing or a bug to happen, the module's own flag or function is replaced for that one call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t

import pytest
from ansible.module_utils.basic import missing_required_lib

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import entrypoint, probe, s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.modules import (
    credentials_check,
    http_check,
    index_list,
    package_build,
    package_install,
    pod_restart,
    s3_objects,
)
from tests.badservers import refusing_port
from tests.helpers import ROOT, VENV_BIN


def _import_error(name: str) -> ImportError:
    """A real ImportError with its traceback, as a module_utils' ``try: import`` keeps it."""
    try:
        __import__(f"{name}_is_not_installed_here")
    except ImportError as exc:
        return exc
    raise AssertionError("the import worked")


@pytest.fixture
def tracebacks(monkeypatch) -> t.Callable[[bool], None]:
    """Turn the module side's traceback capture on or off, as the controller's DISPLAY_TRACEBACK would."""
    from ansible.module_utils._internal import _traceback

    def set_to(on: bool) -> None:
        monkeypatch.setattr(
            _traceback, "_is_traceback_enabled", lambda event: on and event is _traceback.TracebackEvent.ERROR
        )

    set_to(True)
    return set_to


def one_sentence(msg: str) -> str:
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


# --------------------------------------------------------------------------- a missing library


MISSING = [
    (http_check, httputil, "HAS_REQUESTS", "REQUESTS_IMPORT_ERROR", "requests", {"url": "http://127.0.0.1:9/"}),
    (credentials_check, httputil, "HAS_REQUESTS", "REQUESTS_IMPORT_ERROR", "requests", {"url": "http://127.0.0.1:9/"}),
    (index_list, si, "HAS_PACKAGING", "PACKAGING_IMPORT_ERROR", "packaging", {"url": "http://127.0.0.1:9/simple/"}),
    (
        package_build,
        probe,
        "HAS_PACKAGING",
        "PACKAGING_IMPORT_ERROR",
        "packaging",
        {"dest": "/x", "probe": {"name": "x", "version": "1"}},
    ),
    (s3_objects, s3, "HAS_BOTO3", "BOTO3_IMPORT_ERROR", "boto3", {"bucket": "pypi"}),
    (pod_restart, kw, "HAS_K8S", "K8S_IMPORT_ERROR", "kubernetes", {"namespace": "pypi", "label_selector": "a=b"}),
]


@pytest.mark.parametrize(
    ("module", "util", "flag", "error", "lib", "args"),
    MISSING,
    ids=[f"{m[0].__name__.rsplit('.', 1)[1]}" for m in MISSING],
)
def test_a_missing_library_is_missing_required_lib_with_the_import_traceback(
    run_module, monkeypatch, tracebacks, module, util, flag, error, lib, args
):
    monkeypatch.setattr(util, flag, False)
    monkeypatch.setattr(util, error, _import_error(lib) if error != "K8S_IMPORT_ERROR" else f"No module named '{lib}'")
    res = run_module(module, args)
    assert res.failed and res["msg"] == missing_required_lib(lib), res
    if error == "K8S_IMPORT_ERROR":  # k8s_wait keeps the message only
        assert res["exception"] == f"No module named '{lib}'"
    else:
        assert res["exception"].startswith("Traceback (most recent call last):")
        assert f"No module named '{lib}_is_not_installed_here'" in res["exception"]


def test_a_missing_library_keeps_the_fields_every_result_has(run_module, monkeypatch):
    """package_install's results always say which client ran and whether it was missing, failures included."""
    monkeypatch.setattr(httputil, "HAS_REQUESTS", False)
    monkeypatch.setattr(httputil, "REQUESTS_IMPORT_ERROR", _import_error("requests"))
    res = run_module(package_install, {"index_url": "http://127.0.0.1:9/simple/", "name": "x", "client": "uv"})
    assert res.failed and res["msg"] == missing_required_lib("requests")
    assert res["client"] == "uv" and res["client_missing"] is False and res["changed"] is False


# --------------------------------------------------------------------------- a domain error


def test_a_domain_error_is_its_sentence_without_a_traceback(run_module, tmp_path):
    res = run_module(
        pod_restart, {"namespace": "pypi", "label_selector": "a=b", "kubeconfig": str(tmp_path / "missing.yaml")}
    )
    msg = one_sentence(res["msg"])
    assert msg.startswith(f"kubeconfig {tmp_path / 'missing.yaml'} is unreadable/invalid") and "check the path" in msg
    assert "exception" not in res


def test_a_domain_error_returns_the_fields_its_module_declares(run_module, refusing):
    """index_list: an IndexReadError returns its HTTP status beside the sentence (None: no answer at all)."""
    res = run_module(index_list, {"url": refusing + "simple/", "connect_timeout": 1.0, "read_timeout": 0.5})
    assert "Connection refused" in one_sentence(res["msg"])
    assert "status" in res and res["status"] is None and "exception" not in res


@pytest.fixture
def refusing() -> t.Iterator[str]:
    with refusing_port() as port:
        yield f"http://127.0.0.1:{port}/"


# --------------------------------------------------------------------------- a bug


def test_a_bug_in_a_real_module_is_one_sentence_and_its_traceback(run_module, monkeypatch, tracebacks, refusing):
    def broken(*_a: t.Any, **_k: t.Any) -> t.NoReturn:
        raise RuntimeError("boom")

    monkeypatch.setattr(httputil, "make_session", broken)
    res = run_module(http_check, {"url": refusing})
    assert res["msg"] == (
        f"Unexpected RuntimeError while checking {refusing}: boom; this is a bug in pypi_ops.pypiserver.http_check, "
        "please report it with the exception text."
    )
    assert (
        res["exception"].startswith("Traceback (most recent call last):") and "RuntimeError: boom" in res["exception"]
    )
    assert 'raise RuntimeError("boom")' in res["exception"]  # the frame that raised is in it
    tracebacks(False)  # the default: the sentence alone, no traceback is even sent
    res = run_module(http_check, {"url": refusing})
    assert res["msg"].startswith("Unexpected RuntimeError while checking") and "exception" not in res


def test_the_bug_sentence_never_shows_credentials_of_the_url(run_module, monkeypatch, refusing):
    monkeypatch.setattr(httputil, "make_session", lambda *_a, **_k: {}["no-such-key"])
    url = refusing.replace("http://", "http://user:s3cret@")
    res = run_module(http_check, {"url": url})
    assert "s3cret" not in res["msg"] and res["msg"].startswith(f"Unexpected KeyError while checking {refusing}:")


# A module made for these tests: real run_module, real AnsibleModule, real arguments; ``run`` does what the test says.
CALLS: dict[str, t.Any] = {}


def _fake_main() -> None:
    entrypoint.run_module(
        "fake",
        {"what": {"type": "str", "required": True}, "url": {"type": "str"}},
        CALLS["run"],
        errors={ls.ServerError: ("log_tail",), ValueError: lambda exc, module: {"msg": f"bad value: {exc}", "x": 1}},
        doing=CALLS.get("doing", "while doing things"),
        fail_fields=CALLS.get("fail_fields"),
        supports_check_mode=True,
    )


class FakeModule:
    main = staticmethod(_fake_main)
    __name__ = "fake"


def _run_fake(run_module, run, **extra: t.Any) -> dict[str, t.Any]:
    CALLS.clear()
    CALLS.update(run=run, **extra)
    return run_module(FakeModule, {"what": "x", "url": "http://u:p@h/"})


def test_the_result_of_run_is_the_module_result(run_module):
    res = _run_fake(run_module, lambda module: {"changed": True, "what": module.params["what"]})
    assert not res.failed and res["changed"] is True and res["what"] == "x"


def test_declared_error_fields_are_returned(run_module):
    def run(module: t.Any) -> t.NoReturn:
        raise ls.ServerError("the server did not start; read its log.", log_tail=["line 1", "line 2"])

    res = _run_fake(run_module, run)
    assert res["msg"] == "the server did not start; read its log." and res["log_tail"] == ["line 1", "line 2"]
    assert "exception" not in res


def test_an_error_handler_gives_all_the_fields(run_module):
    def run(module: t.Any) -> t.NoReturn:
        raise ValueError("7")

    res = _run_fake(run_module, run)
    assert res["msg"] == "bad value: 7" and res["x"] == 1 and "exception" not in res


def test_fail_fields_go_with_every_failure(run_module):
    partial: dict[str, t.Any] = {}

    def run(module: t.Any) -> t.NoReturn:
        partial["removed"] = ["a-1.0.tar.gz"]
        raise KeyError("k")

    res = _run_fake(run_module, run, fail_fields=lambda module: partial)
    assert res["removed"] == ["a-1.0.tar.gz"] and res["msg"].startswith("Unexpected KeyError while doing things: 'k';")


def test_doing_from_the_params_and_a_doing_that_fails(run_module):
    def run(module: t.Any) -> t.NoReturn:
        raise TypeError("t")

    res = _run_fake(run_module, run, doing=lambda p: f"while reading {httputil.redact_url(p['url'])}")
    assert res["msg"].startswith(
        "Unexpected TypeError while reading http://h/: t; this is a bug in pypi_ops.pypiserver.fake"
    )
    res = _run_fake(run_module, run, doing=lambda p: p["no-such-param"])
    assert res["msg"].startswith("Unexpected TypeError while running: t;")


def test_fail_json_and_exit_json_inside_run_are_not_bugs(run_module):
    def run(module: t.Any) -> t.NoReturn:
        module.fail_json(msg="a sentence the module chose.", detail=3)

    res = _run_fake(run_module, run)
    assert res["msg"] == "a sentence the module chose." and res["detail"] == 3 and "exception" not in res


def test_every_module_main_is_one_run_module_call():
    """No module keeps its own catch-all, library check or exit: main() is run_module and nothing else."""
    for path in sorted((ROOT / "plugins" / "modules").glob("[!_]*.py")):
        text = path.read_text()
        main = text[text.index("def main() -> None:") : text.index('if __name__ == "__main__":')]
        assert main.count("run_module(") == 1, path.name
        for forbidden in ("except ", "missing_required_lib", "exit_json", "fail_json", "AnsibleModule("):
            assert forbidden not in main, (path.name, forbidden)
        assert "missing_required_lib" not in text and "this is a bug" not in text, path.name


# --------------------------------------------------------------------------- what ansible-playbook shows


@pytest.mark.timeout(120)
def test_the_traceback_shows_only_when_tracebacks_are_on(tmp_path):
    """ansible-playbook runs a module with a Python that lacks requests: the sentence, and no traceback even at -vvv;
    with ANSIBLE_DISPLAY_TRACEBACK=error, the import's own traceback (module_utils/http.py, ``import requests``)."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60)
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - pypi_ops.pypiserver.index_snapshot:\n        url: http://127.0.0.1:9/simple/\n"
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    env.pop("ANSIBLE_DISPLAY_TRACEBACK", None)
    argv = [str(VENV_BIN / "ansible-playbook"), str(play), "-e", f"ansible_python_interpreter={bare}/bin/python"]
    outputs = {}
    for name, extra_argv, extra_env in (
        ("vvv", ["-vvv"], {}),
        ("tracebacks", [], {"ANSIBLE_DISPLAY_TRACEBACK": "error"}),
    ):
        proc = subprocess.run(
            argv + extra_argv, env={**env, **extra_env}, capture_output=True, text=True, timeout=110, check=False
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        outputs[name] = proc.stdout + proc.stderr
    sentence = "Failed to import the required Python library (requests)"
    assert sentence in outputs["vvv"] and sentence in outputs["tracebacks"]
    assert "Traceback" not in outputs["vvv"] and "No module named 'requests'" not in outputs["vvv"]
    shown = outputs["tracebacks"]
    assert "No module named 'requests'" in shown and "plugins/module_utils/http.py" in shown, shown[-3000:]
