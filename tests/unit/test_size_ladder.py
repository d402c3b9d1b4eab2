"""The upload-size ladder: size parsing, where refusals began and their usual limit, and the module against a real
pypiserver, directly and behind a real proxy that answers 413 above a body size."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import ladder, traffic
from ansible_collections.pypi_ops.pypiserver.plugins.modules import size_ladder
from tests.faultproxy import FaultProxy

KIB, MIB = 1024, 1024 * 1024


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (65536, 65536),
        ("65536", 65536),
        ("64 KiB", 64 * KIB),
        ("64KiB", 64 * KIB),
        ("64 kib", 64 * KIB),
        ("1m", MIB),
        ("16 MiB", 16 * MIB),
        ("1.5 MiB", 3 * MIB // 2),
        ("2 GiB", 2048 * MIB),
        (1048576.0, MIB),
    ],
)
def test_sizes_parse_as_bytes_or_binary_units(value, size):
    assert ladder.parse_size(value) == size


@pytest.mark.parametrize("value", ["64 KB", "1 MB", "abc", "", "-1", 0, -5, True, None, [1], "9 GiB", 1.5, "1 MiB x"])
def test_bad_sizes_name_the_value_and_the_forms_taken(value):
    with pytest.raises(ladder.LadderError) as err:
        ladder.parse_size(value)
    assert f"Invalid size step {value!r} in the ladder (pypi_size_ladder)" in err.value.msg
    assert "'64 KiB'" in err.value.msg


def test_steps_are_climbed_smallest_first_without_duplicates():
    assert ladder.parse_steps(["16 MiB", "64 KiB", 65536, "1 MiB"]) == [64 * KIB, MIB, 16 * MIB]
    assert ladder.parse_steps([]) == []
    with pytest.raises(ladder.LadderError, match="must be a list of sizes"):
        ladder.parse_steps("64 KiB")


@pytest.mark.parametrize(
    ("size", "text"),
    [(64 * KIB, "64 KiB"), (MIB, "1 MiB"), (16 * MIB, "16 MiB"), (110 * MIB + 1500, "110.0 MiB"), (1536, "1.5 KiB"),
     (900, "900 B")],
)  # fmt: skip
def test_labels(size, text):
    assert ladder.label(size) == text


# --------------------------------------------------------------------------- judging the climb


def _ok(size: int, up: float = 0.01, down: float = 0.005) -> ladder.Step:
    return ladder.Step(ladder.label(size), size, f"p-{size}.whl", size + 700, "uploaded", None, "", up, down)


def _bad(size: int, outcome: str, status: int | None, detail: str = "") -> ladder.Step:
    return ladder.Step(ladder.label(size), size, f"p-{size}.whl", size + 700, outcome, status, detail, 0.01, 0.0)


def test_a_413_after_256_kib_names_the_step_and_the_nginx_default():
    steps = [_ok(64 * KIB), _ok(256 * KIB), _bad(MIB, "too_large", 413, "413 Request Entity Too Large")]
    assert ladder.first_refusal(steps) == (steps[1], steps[2])
    msg = ladder.refusal_message(steps)
    assert msg.startswith("Size ladder: accepted up to 256 KiB, HTTP 413 from 1 MiB; nginx's client_max_body_size")
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in msg
    assert "Server said: 413 Request Entity Too Large" in msg
    assert "\n" not in msg


def test_a_400_just_above_100_kb_names_the_pypiserver_2_3_bug():
    steps = [_ok(64 * KIB), _bad(256 * KIB, "rejected", 400, "MultipartError: Memory limit reached.")]
    msg = ladder.refusal_message(steps)
    assert msg.startswith("Size ladder: accepted up to 64 KiB, HTTP 400 from 256 KiB; pypiserver 2.3.x")
    assert "MEMFILE_MAX" in msg and "Memory limit reached" in msg
    # the bottle bug is not blamed for a 413, nor for a refusal far above 100 kB
    assert "pypiserver 2.3.x" not in ladder.limit_hint(64 * KIB, 256 * KIB, 413)
    assert "pypiserver 2.3.x" not in ladder.limit_hint(MIB, 16 * MIB, 400)


def test_limits_between_16_mib_and_the_large_file_are_the_cloud_caps():
    hint = ladder.limit_hint(16 * MIB + 700, 110 * MIB + 1500, 413)
    assert "Cloud Run" in hint and "Cloudflare" in hint
    assert "client_max_body_size defaults to 1m" not in hint and "API Gateway" not in hint


def test_a_limit_no_known_cap_explains_is_described_generically():
    hint = ladder.limit_hint(2 * MIB, 4 * MIB, 413)
    assert hint.startswith("usually a body-size limit in front of the server: a reverse proxy's client_max_body_size")


def test_the_first_step_failing_is_not_called_a_size_limit():
    steps = [_bad(64 * KIB, "forbidden", 403, "")]
    msg = ladder.refusal_message(steps)
    assert msg.startswith(
        "Size ladder: the first step (64 KiB) was not accepted, so no size was: Upload of p-65536.whl"
    )
    assert "got forbidden (HTTP 403)" in msg and "accepted up to" not in msg


def test_a_broken_connection_at_a_step_says_where_and_what_may_cut_it():
    steps = [_ok(64 * KIB), _ok(MIB), _bad(16 * MIB, "unreachable", None, "connection reset by the server")]
    msg = ladder.refusal_message(steps)
    assert msg.startswith("Size ladder: accepted up to 1 MiB, no answer from 16 MiB; AWS API Gateway")
    assert msg.endswith("or the connection broke: connection reset by the server")


def test_a_stall_or_the_deadline_is_not_called_a_size_limit():
    stalled = [_ok(64 * KIB), _bad(256 * KIB, "stalled", None, "upload of x.whl stopped after 12.0 of 258.0 KiB")]
    assert ladder.refusal_message(stalled) == (
        "Size ladder: accepted up to 64 KiB, then the 256 KiB upload stalled: upload of x.whl stopped after 12.0 of "
        "258.0 KiB"
    )
    late = [_ok(64 * KIB), _bad(MIB, "deadline", None, "the test's deadline passed before the size ladder's step 2/2")]
    assert ladder.refusal_message(late) == (
        "Size ladder: accepted up to 64 KiB, then stopped before the 1 MiB step: the test's deadline passed before "
        "the size ladder's step 2/2"
    )
    assert ladder.refusal_message(late[1:]).startswith("Size ladder: stopped before the 1 MiB step: ")


def test_a_download_that_fails_after_an_accepted_upload_is_named():
    steps = [_ok(64 * KIB), _bad(256 * KIB, "download_failed", None, "x.whl came back with sha256 0f")]
    assert ladder.refusal_message(steps) == (
        "Size ladder: the 256 KiB upload was accepted but downloading it back failed: x.whl came back with sha256 0f"
    )


def test_a_full_climb_has_no_refusal_and_a_summary_of_every_step():
    steps = [_ok(64 * KIB, up=0.01, down=0.005), _ok(MIB, up=0.1, down=0.02)]
    assert ladder.refusal_message(steps) == ""
    assert ladder.first_refusal(steps) == (steps[1], None)
    assert ladder.summary(steps) == "64 KiB 6.3 MiB/s up 12.6 MiB/s down, 1 MiB 10.0 MiB/s up 50.0 MiB/s down"
    assert steps[1].figures() == {
        "step": "1 MiB",
        "bytes": MIB + 700,
        "outcome": "uploaded",
        "upload_s": 0.1,
        "download_s": 0.02,
        "upload_mib_s": 10.0,
        "download_mib_s": 50.0,
    }


# --------------------------------------------------------------------------- the module, against a real pypiserver


def _args(server_url: str, simple_url: str, tmp_path, **kw):
    args = {
        "repository_url": server_url,
        "simple_url": simple_url,
        "project": "pypiops-probe-t-ladder",
        "work_dir": str(tmp_path / "work"),
        "steps": ["64 KiB", "256 KiB"],
    }
    args.update(kw)
    return args


def test_the_ladder_and_its_top_file_are_uploaded_downloaded_and_hash_checked(pypiserver, tmp_path, run_module):
    top = traffic.synthetic_wheel(str(tmp_path / "top"), "pypiops-probe-t-large", "1.0.0", MIB)
    res = run_module(
        size_ladder,
        _args(pypiserver.url, pypiserver.simple_url, tmp_path, steps=["1 MiB", "64 KiB", 262144], below=MIB,
              top_file=top["path"]),
    )  # fmt: skip
    assert not res.failed, res
    assert [s["step"] for s in res["steps"]] == ["64 KiB", "256 KiB", "1.0 MiB"]
    assert res["left_out"] == ["1 MiB"]  # as large as the top file's payload
    assert all(s["outcome"] == "uploaded" and s["upload_mib_s"] > 0 and s["download_mib_s"] > 0 for s in res["steps"])
    assert res["accepted_up_to"] == "1.0 MiB" and res["refused_from"] == ""
    assert res["summary"].startswith("64 KiB ") and " MiB/s up " in res["summary"]
    assert "256 KiB " in res["summary"] and "1.0 MiB" not in res["summary"]  # the top file is the caller's to report
    stored = sorted(os.listdir(pypiserver.package_dir))
    assert stored == [
        "pypiops_probe_t_ladder-1.0.0-py3-none-any.whl",
        "pypiops_probe_t_ladder-1.0.1-py3-none-any.whl",
        "pypiops_probe_t_large-1.0.0-py3-none-any.whl",
    ]
    assert res["steps"][2]["bytes"] == top["size"] == os.path.getsize(os.path.join(pypiserver.package_dir, stored[2]))
    assert list((tmp_path / "work").iterdir()) == []  # the steps' wheels were removed


def test_a_proxy_limit_stops_the_climb_at_the_step_it_refuses(pypiserver, tmp_path, run_module):
    with FaultProxy(pypiserver.url, max_body=512 * KIB) as proxy:
        res = run_module(
            size_ladder,
            _args(proxy.url, proxy.url + "simple/", tmp_path, steps=["64 KiB", "256 KiB", "1 MiB", "16 MiB"]),
        )
    assert res.failed
    assert res["msg"].startswith("Size ladder: accepted up to 256 KiB, HTTP 413 from 1 MiB; nginx's client_max_body")
    assert [s["outcome"] for s in res["steps"]] == ["uploaded", "uploaded", "too_large"]  # 16 MiB never sent
    assert res["steps"][2]["status"] == 413
    assert res["accepted_up_to"] == "256 KiB" and res["refused_from"] == "1 MiB"
    assert len(os.listdir(pypiserver.package_dir)) == 2


def test_bad_steps_fail_before_anything_is_sent(pypiserver, tmp_path, run_module):
    bad = run_module(size_ladder, _args(pypiserver.url, pypiserver.simple_url, tmp_path, steps=["64 KB"]))
    assert bad.failed and bad["msg"].startswith("Invalid size step '64 KB' in the ladder (pypi_size_ladder)")
    empty = run_module(size_ladder, _args(pypiserver.url, pypiserver.simple_url, tmp_path, steps=[]))
    assert empty.failed and "has no step" in empty["msg"]
    missing = run_module(
        size_ladder, _args(pypiserver.url, pypiserver.simple_url, tmp_path, top_file=str(tmp_path / "no.whl"))
    )
    assert missing.failed and "does not exist" in missing["msg"]
    check = run_module(size_ladder, _args(pypiserver.url, pypiserver.simple_url, tmp_path), check_mode=True)
    assert not check.failed and check["skipped"]
    assert os.listdir(pypiserver.package_dir) == []
