"""Shared fixtures: real pypiserver processes on 127.0.0.1 and an in-process module runner.

Nothing here mocks the server under test. Every server a test starts is stopped
by PID at teardown, even when the test fails.
"""

from __future__ import annotations

import json
import os
import sys
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".venv" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible.module_utils.common import warnings as ansible_warnings  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls  # noqa: E402


class Server(t.NamedTuple):
    url: str
    port: int
    package_dir: str
    state_dir: str
    htpasswd: str | None
    username: str | None
    password: str | None
    spec: ls.Spec

    @property
    def simple_url(self) -> str:
        return self.url + "simple/"

    def restart(self) -> dict:
        return ls.start(self.spec._replace(port=self.port), self.state_dir, force_restart=True)[1]

    def stop(self) -> None:
        ls.stop(self.state_dir)


@pytest.fixture
def pypiserver_factory(tmp_path_factory):
    """Start real pypiserver processes; all are stopped by PID at teardown."""
    started: list[Server] = []

    def factory(
        auth_actions: tuple[str, ...] = (),
        username: str | None = None,
        password: str | None = None,
        overwrite: bool = False,
        package_dir: str | None = None,
        backend: str = "simple-dir",
        **extra: t.Any,
    ) -> Server:
        base = tmp_path_factory.mktemp("pypiserver")
        state_dir = str(base / "state")
        pkg = package_dir or str(base / "packages")
        htpasswd = None
        if username is not None:
            htpasswd = str(base / "htpasswd")
            ls.write_htpasswd(htpasswd, {username: password or ""})
        spec = ls.Spec(
            package_dir=pkg,
            auth_actions=tuple(auth_actions),
            htpasswd=htpasswd,
            overwrite=overwrite,
            backend=backend,
            **extra,
        )
        _, info = ls.start(spec, state_dir, timeout=30)
        server = Server(info["url"], info["port"], pkg, state_dir, htpasswd, username, password, spec)
        started.append(server)
        return server

    yield factory
    for server in started:
        ls.stop(server.state_dir)


@pytest.fixture
def pypiserver(pypiserver_factory) -> Server:
    """A plain server: no auth, no overwrite."""
    return pypiserver_factory()


@pytest.fixture
def auth_pypiserver(pypiserver_factory) -> Server:
    """A server that authenticates uploads (pypiserver's default -a update)."""
    return pypiserver_factory(auth_actions=("update",), username="ci-user", password="s3cr3t-Pa55")


class ModuleResult(dict):
    @property
    def failed(self) -> bool:
        return bool(self.get("failed"))


@pytest.fixture
def run_module(capsys):
    """Run a module's main() in-process with real arguments; return its JSON result."""

    def runner(module: t.Any, args: dict[str, t.Any], check_mode: bool = False) -> ModuleResult:
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        capsys.readouterr()
        # module warnings/deprecations are process-global in ansible-core: start each run clean
        ansible_warnings._global_warnings.clear()
        ansible_warnings._global_deprecations.clear()
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
        out = capsys.readouterr().out
        try:
            return ModuleResult(json.loads(out))
        except ValueError:
            pytest.fail(f"module printed non-JSON output: {out!r}")

    return runner


@pytest.fixture
def no_user_pip_config(monkeypatch, tmp_path):
    """Point pip's global/user config somewhere empty for this test's children."""
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-empty"))
    monkeypatch.setenv("HOME", os.environ.get("HOME", str(tmp_path)))


@pytest.fixture(scope="session")
def uv_bin() -> str:
    """The uv binary: .venv/bin/uv (requirements.txt pins it) or $PYPI_OPS_UV; a skip naming the fix without one,
    a failure in CI."""
    venv_uv = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "uv")
    for candidate in (venv_uv, os.environ.get("PYPI_OPS_UV", "")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    reason = "uv is not installed: neither .venv/bin/uv (pip install -r requirements.txt) nor $PYPI_OPS_UV exists"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def require_fuse():
    """Skip (with the reason) where FUSE/s3fs is missing; in CI (CI=true) that is a failure instead."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_s3 import fuse_problem

    problem = fuse_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"S3 tests must run in CI: {problem}")
        pytest.skip(problem)


# ---------------------------------------------------------------- pytest-xdist (make test runs -n 3 --dist loadgroup)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: fail when the xdist_group marks were dropped, and hand out the slow tests first.

    A group keeps tests together that must not run on two workers at once or that share an expensive run (the
    fault suite's and the bad-input suite's module fixtures run every case of their module; the shared runs of
    test_secrets.py/test_cleanup.py; the helm tests that read every helm values file on the machine). pytest-xdist
    marks a grouped test by appending ``@<group>`` to its node id; some pytest versions drop that silently
    (pytest-xdist#1386), which would run those module fixtures once per worker, so that is an error here.
    The order only changes what a worker gets next (xdist hands out the groups first, then single tests in this
    order): the slow tests before the many short ones, so that no long test starts last."""
    if not hasattr(config, "workerinput"):
        return
    if getattr(config.option, "loadgroup", False):
        lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if lost:
            raise pytest.UsageError(
                f"--dist loadgroup ignored the xdist_group mark of {lost[0]} ({len(lost)} tests): this pytest and "
                "pytest-xdist do not work together (pytest-xdist#1386); install the pinned versions with 'make dev'."
            )
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
