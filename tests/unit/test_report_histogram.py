"""The latency histogram of traffic.summarize (drawn by report.html): buckets, edges and counts."""

from __future__ import annotations

import bisect
import json
import random

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import traffic
from ansible_collections.pypi_ops.pypiserver.plugins.modules import load_test


def _expected(millis: list[float]) -> list[int]:
    """Counts per bucket computed independently: bucket i holds edge[i-1] < ms <= edge[i]; the last, the rest."""
    edges = list(traffic.LATENCY_BUCKETS_MS)
    counts = [0] * (len(edges) + 1)
    for ms in millis:
        counts[bisect.bisect_left(edges, ms)] += 1
    return counts


def _ops(seconds: list[float], ok: bool = True) -> list[traffic.Op]:
    return [traffic.Op("upload", f"f{i}", ok, 200 if ok else 500, s, 1, "") for i, s in enumerate(seconds)]


def test_histogram_counts_every_ok_op_in_its_bucket():
    rng = random.Random(20240501)
    edges = list(traffic.LATENCY_BUCKETS_MS)
    # every edge exactly, just above each edge, log-spread values, and some beyond the last edge
    seconds = [e / 1000 for e in edges] + [(e + 0.01) / 1000 for e in edges]
    seconds += [10 ** rng.uniform(-4.5, 1.2) for _ in range(400)] + [0.0, 7.5, 60.0]
    ok_ops = _ops(seconds)
    failed_ops = _ops([0.0005, 3.0, 9.0], ok=False)  # failed operations are not latencies of the server's work
    summary = traffic.summarize(ok_ops + failed_ops, wall=10.0)
    hist = summary["histogram"]
    assert [b["le_ms"] for b in hist] == [*edges, None]
    assert [b["count"] for b in hist] == _expected([s * 1000 for s in seconds])
    assert sum(b["count"] for b in hist) == summary["ok"] == len(seconds)
    # an op exactly on an edge is in that edge's bucket, just above it in the next one
    assert [b["count"] for b in traffic.summarize(_ops([0.005]), 1.0)["histogram"]][edges.index(5)] == 1
    assert [b["count"] for b in traffic.summarize(_ops([0.00501]), 1.0)["histogram"]][edges.index(10)] == 1
    json.dumps(hist, allow_nan=False)  # plain JSON, the last edge is null


def test_histogram_of_no_ops_has_every_bucket_empty():
    hist = traffic.summarize([], 0.0)["histogram"]
    assert [b["le_ms"] for b in hist] == [*traffic.LATENCY_BUCKETS_MS, None]
    assert {b["count"] for b in hist} == {0}
    only_failed = traffic.summarize(_ops([0.001, 0.002], ok=False), 1.0)["histogram"]
    assert sum(b["count"] for b in only_failed) == 0


def test_load_test_returns_histograms_that_sum_to_the_ok_ops(auth_pypiserver, tmp_path, run_module):
    args = {
        "repository_url": auth_pypiserver.url,
        "simple_url": auth_pypiserver.simple_url,
        "project": "histprobe",
        "username": auth_pypiserver.username,
        "password": auth_pypiserver.password,
        "uploads": 6,
        "downloads": 9,
        "work_dir": str(tmp_path / "work"),
    }
    res = run_module(load_test, args)
    assert not res.failed, res
    for phase, ok in (("upload", 6), ("download", 9)):
        hist = res[phase]["histogram"]
        assert [b["le_ms"] for b in hist] == [*traffic.LATENCY_BUCKETS_MS, None]
        assert sum(b["count"] for b in hist) == res[phase]["ok"] == ok
    refused = run_module(load_test, dict(args, password="wrong", uploads=2, min_success_rate=0))
    assert sum(b["count"] for b in refused["upload"]["histogram"]) == refused["upload"]["ok"] == 0
