"""The bad-input matrix, network side, end to end: the real ``verify.yml -e pypi_target=url --tags p0`` against real
bad servers (tests/badservers.py) and a real TLS-terminating proxy in front of a real pypiserver.

Each failing case must end with rc != 0, the right test failed with its one-sentence reason (and the task that found
it), and the later P0 tests skipped naming the failed prerequisite; the TLS cases that must work (a private CA given
as pypi_ca_path, and validate_certs false with its warning) pass P0 with real twine and pip.

No case may hang: each run gets a subprocess timeout computed from the timeouts it was given (a hang fails that
case instead of blocking CI); nothing here asserts how fast anything is. The runs go six at a time.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.badservers import UNRESOLVABLE_HOST, BadServer, Certs, TLSProxy, make_certs, refusing_port
from tests.helpers import ROOT, PlayRun, run_playbook

# the fixture runs every case's playbook; under xdist one worker runs the whole module, so it runs once
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400), pytest.mark.xdist_group("bad_input_network_e2e")]

VERIFY = ROOT / "verify.yml"
# Small timeouts for the cases that fail: the connect/read timeouts of every request, how long connection retries,
# and one client operation (package build, twine, pip).
SMALL = {"pypi_connect_timeout": 1, "pypi_read_timeout": 1, "pypi_connect_wait": 2, "pypi_op_timeout": 60}
# The runs that must pass get room to work (a loaded machine), and a bound all the same.
ROOMY = {"pypi_connect_timeout": 5, "pypi_read_timeout": 10, "pypi_connect_wait": 5, "pypi_op_timeout": 120}
# What ansible-playbook itself may take for a --tags p0 run (start-up, deploy, skipped tests, report), on a busy
# machine with six runs at once. Generous on purpose: this bounds a hang, it does not measure speed.
ALLOWANCE = 240.0
# ansible-playbook mostly waits (task round trips), so several runs share the two cores well.
WORKERS = 6
P0_AFTER_CONNECTION = ["simple_index", "upload", "download", "list"]


def bound(variables: dict[str, t.Any]) -> float:
    """The latest a run with these timeouts may end: every wait and timeout it can meet, plus ansible's own time.

    connection retries the base URL (and then the health URL) for pypi_connect_wait seconds, and the attempt under
    way at the deadline may take one more connect + read timeout; upload builds the probe and runs twine once per file
    (sdist, wheel), download runs pip: each at most pypi_op_timeout; the other P0 tests read the index (a few
    requests each).
    """
    connect, read = float(variables["pypi_connect_timeout"]), float(variables["pypi_read_timeout"])
    wait, op = float(variables["pypi_connect_wait"]), float(variables["pypi_op_timeout"])
    request = connect + read
    return ALLOWANCE + 2 * (wait + request) + 4 * op + 10 * request


class Case(t.NamedTuple):
    variables: dict[str, t.Any]
    failed: str | None  # the test that must fail first (None: the run must pass)
    fragments: tuple[str, ...]  # what its reason must say


# What the other P0 tests must show when a test fails: {test id: (status, what its reason must say)}.
AFTER = {
    "connection": {test_id: ("skipped", "prerequisite connection failed") for test_id in P0_AFTER_CONNECTION},
    # a page that is not an index: the server answers, /simple/ is not an index, so nothing is uploaded to it
    "simple_index": {
        "connection": ("passed", ""),
        "upload": ("skipped", "prerequisite simple_index failed"),
        "download": ("skipped", "prerequisite upload skipped"),
        "list": ("skipped", "prerequisite upload skipped"),
    },
    "upload": {
        "connection": ("passed", ""),
        "simple_index": ("passed", ""),
        "download": ("skipped", "prerequisite upload failed"),
        "list": ("skipped", "prerequisite upload failed"),
    },
}


class Outcome(t.NamedTuple):
    run: PlayRun | None
    seconds: float
    timeout: float
    error: str  # why there is no run (the subprocess timed out)


def _play(variables: dict[str, t.Any], tmp: Path) -> Outcome:
    timeout = bound(variables)
    start = time.monotonic()
    try:
        run = run_playbook(VERIFY, tmp, variables, args=["--tags", "p0"], timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome(None, time.monotonic() - start, timeout, f"verify.yml did not end within {timeout:g}s: a hang")
    return Outcome(run, time.monotonic() - start, timeout, "")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> t.Iterator[dict[str, tuple[Case, Outcome]]]:
    """Every case's verify.yml run, six at a time, with its servers up; all servers stopped afterwards."""
    base = tmp_path_factory.mktemp("badnet-e2e")
    certs = make_certs(base / "certs")
    servers: list[t.Any] = []
    state_dirs: list[str] = []

    def pypiserver(auth: bool = False) -> str:
        """A real pypiserver (stopped by PID at the end); with ``auth``, uploads need ci / right-Pa55word."""
        state = str(base / f"pypiserver-{len(state_dirs)}")
        state_dirs.append(state)
        spec = ls.Spec(package_dir=state + "/packages")
        if auth:
            ls.write_htpasswd(state + ".htpasswd", {"ci": "right-Pa55word"})
            spec = spec._replace(auth_actions=("update",), htpasswd=state + ".htpasswd")
        _, info = ls.start(spec, state, timeout=30)
        return info["url"]

    def serve(server: t.Any) -> str:
        servers.append(server.start())
        return server.url

    def url(address: str, **extra: t.Any) -> dict[str, t.Any]:
        return {"pypi_target": "url", "pypi_url": address, **extra}

    with refusing_port() as port:
        try:
            upstream = pypiserver()
            cases = {
                "dns": Case(
                    url(f"http://{UNRESOLVABLE_HOST}:8080/", **SMALL), "connection", ("does not resolve (DNS)",)
                ),
                "refused": Case(
                    url(f"http://127.0.0.1:{port}/", **SMALL), "connection", ("Connection refused by", "gave up after")
                ),
                "silent": Case(
                    url(serve(BadServer("silent")), **SMALL),
                    "connection",
                    ("sent no answer within 1s", "pypi_read_timeout"),
                ),
                "slow": Case(
                    url(serve(BadServer("slow", delay=60)), **SMALL), "connection", ("sent no answer within 1s",)
                ),
                "5xx": Case(url(serve(BadServer("status", status=503)), **SMALL), "connection", ("answered HTTP 503",)),
                "html": Case(
                    url(serve(BadServer("html")), **SMALL),
                    "simple_index",
                    ("is not a PyPI simple index", "with no links"),
                ),
                "json": Case(url(serve(BadServer("json")), **SMALL), "simple_index", ("'application/json', not HTML",)),
                "redirect_loop": Case(
                    url(serve(BadServer("redirect_loop")), **SMALL),
                    "connection",
                    ("Too many redirects", "redirect loop"),
                ),
                "tls_unknown_ca": Case(
                    url(serve(TLSProxy(upstream, Certs.server_context(certs.good))), **SMALL),
                    "connection",
                    ("self-signed or from an unknown CA", "pypi_ca_path"),
                ),
                "tls_expired": Case(
                    url(
                        serve(TLSProxy(upstream, Certs.server_context(certs.expired))),
                        pypi_ca_path=str(certs.ca),
                        **SMALL,
                    ),
                    "connection",
                    ("the server certificate has expired",),
                ),
                "tls_other_host": Case(
                    url(
                        serve(TLSProxy(upstream, Certs.server_context(certs.other_host))),
                        pypi_ca_path=str(certs.ca),
                        **SMALL,
                    ),
                    "connection",
                    ("not issued for the host name 'localhost'",),
                ),
                # credentials: wrong ones are refused (403); none where uploads need them is a 401, even with the
                # default user name and no password (a user name alone is no credential)
                "wrong_credentials": Case(
                    url(pypiserver(auth=True), pypi_username="ci", pypi_password="wrong-Pa55word", **ROOMY),
                    "upload",
                    ("got forbidden (HTTP 403); the credentials were refused", "pypi_username/pypi_password"),
                ),
                "missing_credentials": Case(
                    url(pypiserver(auth=True), **ROOMY),
                    "upload",
                    ("got unauthorized (HTTP 401); the server wants credentials for uploads", "pypi_password"),
                ),
                # must work: the private CA given as pypi_ca_path (twine --cert, pip --cert), with credentials the
                # server does not need (a warning in connection's reason, not a failure)
                "tls_ca_path": Case(
                    url(
                        serve(TLSProxy(pypiserver(), Certs.server_context(certs.good))),
                        pypi_ca_path=str(certs.ca),
                        pypi_username="ci",
                        pypi_password="not-needed-Pa55",
                        **ROOMY,
                    ),
                    None,
                    ("WARNING: credentials were given, but the server accepted an upload check without them",),
                ),
                "tls_insecure": Case(
                    url(
                        serve(TLSProxy(pypiserver(), Certs.server_context(certs.good))),
                        pypi_validate_certs=False,
                        **ROOMY,
                    ),
                    None,
                    (),
                ),
            }
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                futures = {
                    name: pool.submit(_play, case.variables, Path(tempfile.mkdtemp(dir=base, prefix=name + "-")))
                    for name, case in cases.items()
                }
                outcomes = {name: future.result() for name, future in futures.items()}
            yield {name: (cases[name], outcomes[name]) for name in cases}
        finally:
            for server in servers:
                server.stop()
            for state in state_dirs:
                ls.stop(state)


def _ended(outcome: Outcome) -> PlayRun:
    assert outcome.run is not None, outcome.error
    assert outcome.run.results, outcome.run.output[-3000:]  # the run got as far as its report
    assert outcome.seconds < outcome.timeout  # ended by itself, before its bound
    return outcome.run


FAILING = ["dns", "refused", "silent", "slow", "5xx", "html", "json", "redirect_loop"]
TLS_FAILING = ["tls_unknown_ca", "tls_expired", "tls_other_host"]
CREDENTIALS = ["wrong_credentials", "missing_credentials"]


@pytest.mark.parametrize("name", FAILING + TLS_FAILING + CREDENTIALS)
def test_a_bad_input_fails_the_right_test_with_one_sentence(name, runs):
    case, outcome = runs[name]
    run = _ended(outcome)
    assert run.rc != 0, run.output[-3000:]
    assert "Traceback" not in run.output
    result = run.results[case.failed]
    assert result["status"] == "failed", (name, run.results)
    reason = result["reason"]
    assert "\n" not in reason and " [task: " in reason, reason
    for fragment in case.fragments:
        assert fragment in reason, (name, reason)
    if case.failed == "connection":
        assert reason.endswith("[task: Connection | the base URL answers]"), reason
    for test_id, (status, says) in AFTER[case.failed].items():
        assert run.results[test_id]["status"] == status, (test_id, run.results)
        assert says in run.results[test_id]["reason"], (test_id, run.results[test_id])
    if name == "wrong_credentials":  # connection notes the refusal without failing (read-only accounts are fine there)
        assert (
            "an upload check with the given credentials was refused (HTTP 403)" in run.results["connection"]["reason"]
        )


def test_tls_with_the_private_ca_as_pypi_ca_path_passes_p0(runs):
    case, outcome = runs["tls_ca_path"]
    run = _ended(outcome)
    assert run.rc == 0, run.output[-4000:]
    for test_id in ["connection", *P0_AFTER_CONNECTION]:
        assert run.results[test_id]["status"] == "passed", (test_id, run.results)
    assert run.results["connection"]["reason"].startswith(case.variables["pypi_url"])
    assert case.fragments[0] in run.results["connection"]["reason"]
    assert "[WARNING]: Credentials were given, but" in run.output  # printed by the module, not only recorded
    assert "NOT verified" not in run.output


def test_validate_certs_false_passes_p0_and_warns(runs):
    _case, outcome = runs["tls_insecure"]
    run = _ended(outcome)
    assert run.rc == 0, run.output[-4000:]
    for test_id in ["connection", *P0_AFTER_CONNECTION]:
        assert run.results[test_id]["status"] == "passed", (test_id, run.results)
    assert "validate_certs is false: TLS certificates are NOT verified" in run.output
