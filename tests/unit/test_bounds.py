"""Every transfer ends within its bounds: a stall (no byte for read_timeout), the operation's total time, the test's
deadline, and the circuit breaker of repeated operations.

Real servers only: a real pypiserver behind ``tests/faultproxy.py`` (a real proxy that stalls mid-body, stops
reading an upload, or stops answering after N requests) and ``tests/badservers.py``'s trickling server. Each test
states the bound it expects from the timeouts it configures, and asserts only that bound (a generous one: no
timing assertion tighter than the configured limits plus process overhead).
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, traffic, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from tests.badservers import BadServer
from tests.faultproxy import FaultProxy

MIB = 1 << 20
SLACK = 10.0  # process and scheduling overhead allowed on top of a configured bound


def _opts(read: float = 1.0, op: float = 300.0, deadline: float = 0.0, name: str | None = None):
    return httputil.ClientOptions(None, None, True, None, 5.0, read, op, bounds.Deadline(deadline, name))


@pytest.fixture
def big_wheel(pypiserver, tmp_path):
    rec = traffic.synthetic_wheel(str(tmp_path), "stall-probe", "1.0.0", payload_size=8 * MIB)
    opts = _opts(read=30)
    got = upload.http_upload(httputil.make_session(opts), pypiserver.url, rec["path"], rec["name"], "1.0.0", None, opts)
    assert got.outcome == "uploaded", got
    return rec


def test_a_download_that_stalls_mid_body_fails_naming_how_far_it_got(pypiserver, big_wheel):
    with FaultProxy(pypiserver.url, stall_body=(r"stall_probe", 3 * MIB)) as proxy:
        url = f"{proxy.url}packages/{big_wheel['filename']}"
        start = time.monotonic()
        with pytest.raises(si.IndexReadError) as err:
            si.download_and_hash(httputil.make_session(_opts()), url, _opts(read=1.0))
        took = time.monotonic() - start
    msg = err.value.msg
    assert f"download of {big_wheel['filename']} stopped sending after 3.0 of {big_wheel['size'] / MIB:.1f} MiB" in msg
    assert "no byte for 1 s (pypi_read_timeout)" in msg
    assert proxy.stalled, "the proxy never stalled a download: the test proved nothing"
    assert took < 1.0 + SLACK  # the stall limit, not the 300 s operation allowance


def test_a_slow_but_moving_download_is_no_stall_but_has_a_total_limit():
    with BadServer("trickle", delay=0.1) as server:  # 1 KiB every 0.1 s: moving, under the 1 s stall limit
        start = time.monotonic()
        with pytest.raises(si.IndexReadError) as err:
            si.download_and_hash(httputil.make_session(_opts()), f"{server.url}file.whl", _opts(read=1.0, op=2.0))
        took = time.monotonic() - start
    msg = err.value.msg
    assert "was still running after 2 s, the time allowed for one operation (pypi_op_timeout)" in msg
    assert "no byte for" not in msg  # it never stalled
    assert took < 2.0 + 1.0 + SLACK


def test_the_deadline_cuts_a_stalled_download_short_and_names_itself(pypiserver, big_wheel):
    with FaultProxy(pypiserver.url, stall_body=(r"stall_probe", MIB)) as proxy:
        url = f"{proxy.url}packages/{big_wheel['filename']}"
        start = time.monotonic()
        with pytest.raises(si.IndexReadError) as err:
            opts = _opts(read=30.0, deadline=time.time() + 1.5, name="the deadline of test download")
            si.download_and_hash(httputil.make_session(opts), url, opts)
        took = time.monotonic() - start
    assert "the deadline of test download passed" in err.value.msg
    assert took < 1.5 + SLACK  # not the 30 s read timeout


def test_an_upload_the_server_stops_reading_fails_as_stalled(pypiserver, tmp_path):
    rec = traffic.synthetic_wheel(str(tmp_path), "upstall", "1.0.0", payload_size=48 * MIB)  # > socket buffers
    with FaultProxy(pypiserver.url, stall_upload=2 * MIB) as proxy:
        opts = _opts(read=1.0)
        start = time.monotonic()
        got = upload.http_upload(httputil.make_session(opts), proxy.url, rec["path"], rec["name"], "1.0.0", None, opts)
        took = time.monotonic() - start
    assert got.outcome == "stalled", got
    assert f"upload of {rec['filename']} stopped after" in got.detail and "no byte for 1 s" in got.detail, got
    assert took < 1.0 + SLACK
    sentence = upload.explain(rec["filename"], got, ["uploaded"])
    assert sentence.startswith(f"Upload of {rec['filename']}: expected uploaded, got no answer: upload of")


def test_an_upload_that_gets_no_answer_after_its_body_names_the_whole_body_sent(pypiserver, tmp_path):
    rec = traffic.synthetic_wheel(str(tmp_path), "noanswer", "1.0.0", payload_size=MIB)
    with FaultProxy(pypiserver.url, hang_after=0) as proxy:
        opts = _opts(read=1.0)
        got = upload.http_upload(httputil.make_session(opts), proxy.url, rec["path"], rec["name"], "1.0.0", None, opts)
    assert got.outcome == "stalled", got
    assert "MiB were sent, then no answer within 1 s (pypi_read_timeout)" in got.detail, got


def test_the_breaker_stops_a_load_against_a_server_that_stopped_answering(pypiserver, tmp_path):
    files = [traffic.synthetic_wheel(str(tmp_path), "brk", f"1.0.{i}") for i in range(40)]
    with FaultProxy(pypiserver.url, hang_after=2) as proxy:
        breaker = bounds.Breaker(3, "upload", len(files))
        start = time.monotonic()
        ops, _wall = traffic.upload_all(files, proxy.url, _opts(read=1.0), breaker=breaker)
        took = time.monotonic() - start
    assert [o.ok for o in ops] == [True, True, False, False, False]  # 2 answered, then 3 failures and stop
    assert breaker.message.startswith("stopped after 3 consecutive upload failures (no answer within 1 s) at 5/40")
    assert "; first: upload of brk-1.0.2-py3-none-any.whl: all" in breaker.message
    assert took < 3 * 1.0 + SLACK  # three failures at their bound, not 38


def test_intermittent_failures_reset_the_breaker():
    breaker = bounds.Breaker(2, "download", 6)
    for ok in (False, True, False, True, False, True):
        breaker.record(ok, "download of x stopped sending after 1.0 of 2.0 MiB; no byte for 30 s")
    assert not breaker.open
    breaker.record(False, "HTTP 503", 503)
    breaker.record(False, "download of x: no byte for 30 s")  # another kind: the run restarts
    assert not breaker.open
    breaker.record(False, "download of y: no byte for 30 s")
    assert breaker.open and "(no byte for 30 s) at 9/6" in breaker.message


def test_the_deadline_halts_a_loop_before_its_next_operation(pypiserver, tmp_path):
    files = [traffic.synthetic_wheel(str(tmp_path), "dl", f"1.0.{i}") for i in range(3)]
    breaker = bounds.Breaker(5, "upload", len(files))
    opts = _opts(deadline=time.time() - 1, name="the run deadline (pypi_run_deadline)")
    ops, _ = traffic.upload_all(files, pypiserver.url, opts, breaker=breaker)
    assert ops == []
    assert breaker.message.startswith("the run deadline (pypi_run_deadline) passed at 0/3 uploads")


def test_failure_kind_groups_messages():
    assert bounds.failure_kind("x stopped sending after 1.0 of 9.0 MiB; no byte for 30 s (...)") == "no byte for 30 s"
    assert bounds.failure_kind("whatever", 503) == "HTTP 503"
    assert bounds.failure_kind("Connection refused by http://x/: nothing listens there") == "connection refused"


def test_a_child_timeout_cut_by_the_deadline_names_the_deadline():
    passed = bounds.Deadline(time.time() - 1, "the deadline of test clients (60 s, pypi_test_deadline)")
    assert passed.explain_timeout("pip install x did not finish within 0.5s (timeout).", "during pip install x") == (
        "the deadline of test clients (60 s, pypi_test_deadline) passed during pip install x; the server is too slow "
        "for it (or hangs): look at why, or raise the deadline."
    )
    future = bounds.Deadline(time.time() + 60)
    assert future.explain_timeout("twine did not finish within 300s", "during twine upload") == (
        "twine did not finish within 300s"
    )


def test_a_request_cut_by_the_deadline_names_the_deadline_not_the_read_timeout():
    with BadServer("silent") as server:
        opts = _opts(read=30.0, deadline=time.time() + 1.0, name="the run deadline (60 s, pypi_run_deadline)")
        start = time.monotonic()
        with pytest.raises(si.IndexReadError) as err:
            si.fetch_project(httputil.make_session(opts), f"{server.url}simple/", "x", opts)
        took = time.monotonic() - start
    assert err.value.msg.startswith(f"the run deadline (60 s, pypi_run_deadline) passed while waiting for {server.url}")
    assert took < 1.0 + SLACK  # not the 30 s read timeout
