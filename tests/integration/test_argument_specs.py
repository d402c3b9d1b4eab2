"""The roles' argument specs, through the real verify.yml: an unknown target or a wrongly typed variable of any role
fails at once, before any server starts, with a message naming the variable; under --tags too. A valid run still
gets past the checks."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.helpers import ROOT, run_playbook

VERIFY = ROOT / "verify.yml"
VALIDATION_TASK = "Validating arguments against arg spec"
TAGS = [pytest.param([], id="all"), pytest.param(["--tags", "p0"], id="tags-p0")]


@pytest.fixture(autouse=True)
def _stop_a_server_the_run_left(tmp_path):
    """A run that wrongly gets as far as deploying starts a local pypiserver; never leave it running, even when the
    playbook's own teardown did not get to run (it is stopped by the PID in its state file)."""
    yield
    state = tmp_path / "state"
    if state.is_dir():
        ls.stop(str(state))


def _first_failure(output: str) -> tuple[str, str]:
    """(task header, failure text) of the first failed task of the run."""
    task = ""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("TASK ["):
            task = line
        elif re.match(r"^(fatal|failed): \[", line):
            return task, "\n".join(lines[max(0, i - 12) : i + 40])
    raise AssertionError("no task failed:\n" + output[-3000:])


def _assert_failed_before_anything_started(run, tmp_path, *needles: str) -> None:
    assert run.rc != 0, run.output[-3000:]
    task, failure = _first_failure(run.output)
    assert VALIDATION_TASK in task, f"the first failure is not the argument check: {task}\n{failure}"
    for needle in needles:
        assert needle in failure, (needle, failure)
    # nothing was deployed: the local target never got to start a pypiserver or create its state dir
    assert "start pypiserver" not in run.output, run.output[-3000:]
    assert "Deploy | target" not in run.output
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args", TAGS)
def test_unknown_target_fails_at_once_naming_the_choices(tmp_path, args):
    run = run_playbook(VERIFY, tmp_path, {"pypi_target": "bogus"}, args=args, timeout=120)
    _assert_failed_before_anything_started(
        run, tmp_path, "value of pypi_target must be one of: local, local_s3, url, kubernetes, got: bogus"
    )


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        pytest.param(
            {"pypi_auth_actions": 5},
            ["pypi_auth_actions", "one or more of: update, download, list", "Got no match for: 5"],
            id="deploy-list-choices",
        ),
        pytest.param(
            {"pypi_local_port": "eighty"},
            ["'pypi_local_port' is of type str and we were unable to convert to int"],
            id="deploy-int",
        ),
        pytest.param(
            {"pypi_mode": "prod"},
            ["value of pypi_mode must be one of: test, production, got: prod"],
            id="deploy-mode",
        ),
        pytest.param(
            {"pypi_load_uploads": "many"},
            ["'pypi_load_uploads' is of type str and we were unable to convert to int"],
            id="functional_tests-int",
        ),
        pytest.param(
            {"pypi_production_allow": ["persistence", "everything"]},
            ["pypi_production_allow", "Got no match for: everything"],
            id="functional_tests-list-choices",
        ),
        pytest.param(
            {"pypi_report_fail": "maybe"},
            ["'pypi_report_fail' is of type str and we were unable to convert to bool"],
            id="report-bool",
        ),
    ],
)
@pytest.mark.parametrize("args", TAGS)
def test_wrong_type_fails_at_once_naming_the_variable(tmp_path, extra, needles, args):
    run = run_playbook(VERIFY, tmp_path, extra, args=args, timeout=120)
    _assert_failed_before_anything_started(run, tmp_path, *needles)


def test_valid_values_pass_the_checks(tmp_path):
    """key=value extra vars are strings: the checks accept what converts ('5', 'false', 'update,list') and the run
    goes on. --tags none_such runs only what is tagged always (checks, deploy, teardown, report), so the run ends
    with the report's "No test ran" failure, after the local server was started and stopped again."""
    run = run_playbook(
        VERIFY,
        tmp_path,
        args=[
            "-e",
            "pypi_load_uploads=5",
            "-e",
            "pypi_overwrite=false",
            "-e",
            "pypi_auth_actions=update,list",
            "-e",
            json.dumps({"pypi_production_allow": ["load"], "pypi_mv_versions": ["1.0", "2.0"]}),
            "--tags",
            "none_such",
        ],
        timeout=300,
    )
    assert run.rc != 0
    checks = re.findall(r"^TASK \[pypi_ops\.pypiserver\.(\w+) : " + VALIDATION_TASK, run.output, flags=re.M)
    assert {"deploy", "functional_tests", "report"} <= set(checks), run.output[-3000:]
    task, failure = _first_failure(run.output)
    assert "fail the play when nothing ran" in task, failure
    assert "No test ran" in failure
    assert run.results["deploy"]["status"] == "passed", run.results
    assert not (tmp_path / "state").exists()  # the teardown stopped the server and removed its state
