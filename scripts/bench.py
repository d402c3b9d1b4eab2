"""Benchmarks: the verifier's own cost, measured against raw clients in the same run.

    make bench                                # full run: table on stdout, reports/bench.json
    .venv/bin/python scripts/bench.py --smoke # seconds-long run with tiny sizes (make test runs it)
    .venv/bin/python scripts/bench.py --no-cold --rounds 7

One local pypiserver (no auth, sha256 links) serves every comparison. Each comparison alternates the
collection's code (A) and a raw baseline (B) over several rounds in this one process run and reports the
median of the per-round ratios: absolute times on shared machines are noisy, ratios are what compares.

  1. suite      verify.yml (P0-P2, local target, warm .venv) wall time and per-test breakdown; with --cold
                also `make verify` in a fresh `git clone` of HEAD (new .venv; pip's wheel cache is used).
  2. load       load_test module (uploads + downloads with hash checks) vs a plain requests loop.
  3. large      package_upload (client http, and twine for information) and index_list verify_hashes
                vs curl doing the same multipart upload and a plain download.
  4. memory     peak RSS (wait4 rusage: the process and its waited-for children) of the modules run as
                processes while uploading, downloading and hashing a big package.
  5. scaling    index_list vs a raw GET for projects with 10/100/1000 files and /simple/ with
                10/100/1000 projects; load_test vs the raw loop at N=50/100/200.
  6. ansible    tasks verify.yml runs, time between tasks and per-task dispatch cost (ansible.builtin.ping).
  7. production index_snapshot (production mode's before/after read) on an index of N projects, at depth
                names, files and bytes; at depth files also every project page read one by one (the baseline
                the flat /packages/ listing replaces).

Exit status: 0 all targets met (smoke mode: the run worked), 1 a target was missed, 2 the benchmark
itself failed (the message says which step). There are no timing assertions anywhere in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))

import requests  # noqa: E402
from ansible.module_utils.common import warnings as ansible_warnings  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil  # noqa: E402
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls  # noqa: E402
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import snapshot, traffic, upload  # noqa: E402
from ansible_collections.pypi_ops.pypiserver.plugins.modules import (  # noqa: E402
    index_list,
    index_snapshot,
    load_test,
    package_upload,
)
from tests.helpers import run_playbook  # noqa: E402

MIB = 1048576
PLUGINS = ROOT / "scripts" / "bench_plugins"
COLLECTIONS = ROOT / ".venv" / "collections"
# Actions that run on the controller without a module process.
CONTROLLER_ACTIONS = {
    "ansible.builtin.set_fact",
    "ansible.builtin.assert",
    "ansible.builtin.debug",
    "ansible.builtin.fail",
    "ansible.builtin.meta",
    "ansible.builtin.include_tasks",
    "ansible.builtin.include_role",
    "ansible.builtin.include_vars",
    "ansible.builtin.validate_argument_spec",
    "ansible.builtin.set_stats",
    "ansible.builtin.add_host",
    "ansible.builtin.group_by",
}


class BenchError(Exception):
    """A benchmark step failed; the message names the step and the cause."""


class Figure(t.NamedTuple):
    id: str
    section: str
    label: str
    value: float | None
    unit: str
    baseline: float | None = None  # the raw client's figure, same unit
    ratio: float | None = None
    target: str = ""  # e.g. "<= 1.25"; empty: informational
    detail: str = ""

    @property
    def mark(self) -> str:
        if self.value is None:
            return "skipped"
        if not self.target:
            return "info"
        op, limit = self.target.split()
        got = self.ratio if self.ratio is not None else self.value
        ok = {"<=": got <= float(limit), "<": got < float(limit), ">=": got >= float(limit)}[op]
        return "pass" if ok else "miss"


# ------------------------------------------------------------------ helpers


def call_module(module: t.Any, args: dict[str, t.Any]) -> tuple[dict[str, t.Any], float]:
    """Run a module's main() in this process (as the tests' run_module does); (result, wall seconds)."""
    ansible_warnings._global_warnings.clear()
    ansible_warnings._global_deprecations.clear()
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        start = time.perf_counter()
        try:
            module.main()
        except SystemExit:
            pass
        secs = time.perf_counter() - start
    try:
        result = json.loads(out.getvalue())
    except ValueError:
        raise BenchError(f"{module.__name__} printed no JSON result: {out.getvalue()[:300]!r}") from None
    if result.get("failed"):
        raise BenchError(f"{module.__name__.rsplit('.', 1)[-1]} failed: {result.get('msg')}")
    return result, secs


# Started by run_child: forks the measured command from this small interpreter and reports the child's rusage.
# A process forked from the benchmark itself would inherit the benchmark's memory high-water mark (Linux keeps
# the larger of the pre-exec and post-exec peaks in ru_maxrss), so the fork happens here instead.
_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, out)
"""


def run_child(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Run a process to completion; (exit code, peak RSS MiB of it and its waited-for children, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "rusage.json")
        launcher = [sys.executable, "-I", "-c", _LAUNCHER, report, *argv]
        with open(os.path.join(tmp, "out"), "w+b") as sink:
            proc = subprocess.Popen(launcher, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise BenchError(f"{' '.join(argv[:4])} did not finish within {timeout:g}s") from None
            sink.seek(0)
            output = sink.read().decode(errors="replace")
        if not os.path.exists(report):
            raise BenchError(f"the rusage launcher failed (rc {proc.returncode}): {output[-300:]}")
        with open(report) as handle:
            got = json.load(handle)
    return got["rc"], got["maxrss_kib"] / 1024.0, output


def median_ratio(pairs: list[tuple[float, float]]) -> float:
    return statistics.median(a / b for a, b in pairs if b > 0)


def growth(sizes: list[int], secs: list[float]) -> float:
    """Exponent k in time ~ size**k between the two largest sizes (1.0 is linear), where fixed costs weigh least."""
    if len(sizes) < 2 or secs[-2] <= 0 or sizes[-1] == sizes[-2]:
        return float("nan")
    return math.log(secs[-1] / secs[-2]) / math.log(sizes[-1] / sizes[-2])


def describe_growth(k: float) -> str:
    if math.isnan(k):
        return "not measurable"
    if k < 0.8:
        return f"sub-linear (k={k:.2f} between the two largest sizes): fixed costs still weigh"
    if k <= 1.2:
        return f"linear (k={k:.2f})"
    return f"super-linear (k={k:.2f})"


class Server:
    """One local pypiserver for the whole run, started and stopped by the collection's own lifecycle code."""

    def __init__(self, base: Path):
        self.state_dir = str(base / "server-state")
        self.package_dir = base / "packages"
        # simple-dir: the benchmark writes files straight into the package directory, and a caching backend
        # learns of them later through inotify (a listing right after seeding could miss them)
        spec = ls.Spec(package_dir=str(self.package_dir), backend="simple-dir")
        _changed, state = ls.start(spec, self.state_dir, timeout=30)
        self.url = state["url"].rstrip("/") + "/"
        self.simple = self.url + "simple/"

    def remove(self, filename: str) -> None:
        (self.package_dir / filename).unlink(missing_ok=True)

    def clear(self) -> None:
        """Empty the package directory, so every round and section starts from the same, small index.

        pypiserver scans its whole directory on every upload and listing, so leftovers of earlier rounds would
        slow later ones (for both sides of a comparison, but the absolute figures would drift).
        """
        for path in self.package_dir.iterdir():
            path.unlink()

    def stop(self) -> None:
        ls.stop(self.state_dir)


# ------------------------------------------------------------------ 2 + 5b: load harness overhead


def raw_load(server: Server, wheels: list[dict[str, t.Any]], downloads: int) -> float:
    """The baseline: a plain requests loop doing the load test's HTTP requests; wall seconds."""
    session = requests.Session()
    session.trust_env = False
    project = wheels[0]["name"]
    start = time.perf_counter()
    for rec in wheels:
        with open(rec["path"], "rb") as handle:
            data = upload.form_fields(rec["filename"], rec["name"], rec["version"], rec["sha256"])
            resp = session.post(server.url, data=data, files={"content": (rec["filename"], handle)}, timeout=60)
        if resp.status_code != 200:
            raise BenchError(f"raw upload of {rec['filename']} answered HTTP {resp.status_code}")
    page = session.get(f"{server.simple}{project}/", timeout=60)
    urls = {
        m.group(2): urljoin(page.url, m.group(1)) for m in re.finditer(r'href="([^"#]*/([^/"#]+))[^"]*"', page.text)
    }
    for i in range(downloads):
        rec = wheels[i % len(wheels)]
        body = session.get(urls[rec["filename"]], timeout=60).content
        if hashlib.sha256(body).hexdigest() != rec["sha256"]:
            raise BenchError(f"raw download of {rec['filename']} has a different sha256")
    secs = time.perf_counter() - start
    session.close()
    return secs


def module_load(server: Server, work: Path, project: str, n: int) -> float:
    result, secs = call_module(
        load_test,
        {
            "repository_url": server.url,
            "simple_url": server.simple,
            "project": project,
            "uploads": n,
            "work_dir": str(work / "load"),
        },
    )
    if result["success_rate"] != 100:
        raise BenchError(f"load_test succeeded on only {result['success_rate']}% of operations")
    return secs


def load_pairs(server: Server, work: Path, tag: str, n: int, rounds: int) -> list[tuple[float, float]]:
    """(module seconds, raw seconds) per round, alternating which goes first."""
    pairs = []
    for r in range(rounds):
        wheels = [
            traffic.synthetic_wheel(str(work / f"raw-{tag}-{r}"), f"bench-{tag}-raw-{r}", f"1.0.{i}") for i in range(n)
        ]
        if r % 2 == 0:
            a = module_load(server, work, f"bench-{tag}-mod-{r}", n)
            b = raw_load(server, wheels, n)
        else:
            b = raw_load(server, wheels, n)
            a = module_load(server, work, f"bench-{tag}-mod-{r}", n)
        pairs.append((a, b))
        shutil.rmtree(work / f"raw-{tag}-{r}", ignore_errors=True)
        server.clear()
    return pairs


def bench_load(server: Server, work: Path, n: int, rounds: int) -> list[Figure]:
    pairs = load_pairs(server, work, "load", n, rounds)
    mod, raw = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    return [
        Figure(
            "load_overhead",
            "load",
            f"load_test, {n} uploads + {n} downloads with sha256 checks",
            round(mod, 3),
            "s",
            baseline=round(raw, 3),
            ratio=round(median_ratio(pairs), 3),
            target="<= 1.25",
            detail=f"median of {rounds} alternating rounds; baseline: plain requests loop, same requests",
        )
    ]


# ------------------------------------------------------------------ 3: large-package throughput


def curl_upload(server: Server, rec: dict[str, t.Any], timeout: float) -> float:
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:", "--max-time", str(int(timeout))]
    for key, value in upload.form_fields(rec["filename"], rec["name"], rec["version"]):
        argv += ["-F", f"{key}={value}"]
    argv += ["-F", f"content=@{rec['path']};type=application/octet-stream", server.url]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, check=False)
    secs = time.perf_counter() - start
    if proc.stdout.strip() != "200":
        raise BenchError(f"curl upload answered {proc.stdout.strip() or proc.stderr.strip()}")
    return secs


def curl_download(urls: list[str], timeout: float) -> float:
    """curl fetching ``urls`` one after another on one connection, each to /dev/null; wall seconds."""
    argv = ["curl", "-sS", "-w", "%{http_code}\\n", "--max-time", str(int(timeout))]
    for url in urls:
        argv += ["-o", "/dev/null", url]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, check=False)
    secs = time.perf_counter() - start
    if proc.stdout.split() != ["200"] * len(urls):
        raise BenchError(f"curl download answered {proc.stdout.split() or proc.stderr.strip()}")
    return secs


def module_upload(server: Server, rec: dict[str, t.Any], client: str) -> float:
    result, secs = call_module(
        package_upload, {"repository_url": server.url, "files": [rec["path"]], "client": client, "timeout": 600}
    )
    if result["uploaded"] != [rec["filename"]]:
        raise BenchError(f"package_upload did not upload {rec['filename']}: {result['results']}")
    return secs


def module_download(server: Server, rec: dict[str, t.Any]) -> float:
    result, secs = call_module(
        index_list,
        {"url": server.simple, "project": rec["name"], "verify_hashes": True, "expect": [rec], "read_timeout": 600},
    )
    if [d["sha256"] for d in result["downloads"]] != [rec["sha256"]]:
        raise BenchError(f"index_list downloaded something other than {rec['filename']}")
    return secs


def bench_large(server: Server, work: Path, size_mib: float, rounds: int) -> list[Figure]:
    size = int(size_mib * MIB)
    mod_rec = traffic.synthetic_wheel(str(work / "large"), "bench-large-mod", "1.0.0", size)
    twine_rec = traffic.synthetic_wheel(str(work / "large"), "bench-large-twine", "1.0.0", size)
    curl_rec = traffic.synthetic_wheel(str(work / "large"), "bench-large-curl", "1.0.0", size)
    mib = mod_rec["size"] / MIB
    up, twine_up, down = [], [], []
    for r in range(rounds):
        for rec in (mod_rec, twine_rec, curl_rec):
            server.remove(rec["filename"])
        first_mod = r % 2 == 0
        if first_mod:
            a = module_upload(server, mod_rec, "http")
        b = curl_upload(server, curl_rec, 600)
        if not first_mod:
            a = module_upload(server, mod_rec, "http")
        twine_up.append((module_upload(server, twine_rec, "twine"), b))
        up.append((a, b))
        # index_list reads the project page (for the link and its hash), then streams and hashes the file:
        # curl fetches the same two URLs.
        curl_urls = [f"{server.simple}{curl_rec['name']}/", f"{server.url}packages/{curl_rec['filename']}"]
        if first_mod:
            a = module_download(server, mod_rec)
            b = curl_download(curl_urls, 600)
        else:
            b = curl_download(curl_urls, 600)
            a = module_download(server, mod_rec)
        down.append((a, b))
    for rec in (mod_rec, twine_rec, curl_rec):
        server.remove(rec["filename"])
    shutil.rmtree(work / "large", ignore_errors=True)

    def fig(fid: str, label: str, pairs: list[tuple[float, float]], target: str, detail: str) -> Figure:
        # throughput ratio = module MiB/s / curl MiB/s = curl seconds / module seconds
        mod_s, raw_s = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        ratio = statistics.median(b / a for a, b in pairs if a > 0)
        return Figure(
            fid, "large", label, round(mib / mod_s, 1), "MiB/s", round(mib / raw_s, 1), round(ratio, 3), target, detail
        )

    return [
        fig("large_upload", f"upload {mib:.0f} MiB, package_upload client=http", up, ">= 0.8",
            "baseline: curl -F with the same form fields (no Expect: 100-continue)"),
        fig("large_download", f"download {mib:.0f} MiB + sha256, index_list verify_hashes", down, ">= 0.8",
            "baseline: curl GET of the project page and the file, to /dev/null"),
        fig("large_upload_twine", f"upload {mib:.0f} MiB, package_upload client=twine", twine_up, "",
            "information: twine's start-up and its own hashing are included"),
    ]  # fmt: skip


# ------------------------------------------------------------------ 4: memory


def module_argv(name: str, args: dict[str, t.Any], work: Path) -> list[str]:
    path = work / f"args-{name}.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    return [sys.executable, "-m", f"ansible_collections.pypi_ops.pypiserver.plugins.modules.{name}", str(path)]


def bench_memory(server: Server, work: Path, size_mib: float) -> list[Figure]:
    rec = traffic.synthetic_wheel(str(work / "mem"), "bench-mem", "1.0.0", int(size_mib * MIB))
    twine_rec = traffic.synthetic_wheel(str(work / "mem"), "bench-mem-twine", "1.0.0", int(size_mib * MIB))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    steps = [
        ("package_upload (http)", "package_upload", {"repository_url": server.url, "files": [rec["path"]], "client": "http"}),
        ("package_upload (twine)", "package_upload", {"repository_url": server.url, "files": [twine_rec["path"]], "client": "twine"}),
        ("index_list verify_hashes", "index_list", {"url": server.simple, "project": rec["name"], "verify_hashes": True, "expect": [rec]}),
    ]  # fmt: skip
    peaks = []
    for label, name, args in steps:
        args = dict(args, read_timeout=600)
        rc, peak, out = run_child(module_argv(name, args, work), timeout=900, env=env)
        if rc != 0 or '"failed": true' in out:
            raise BenchError(f"{label} failed while measuring memory: {out[-400:]}")
        peaks.append((label, peak))
    for r in (rec, twine_rec):
        server.remove(r["filename"])
    shutil.rmtree(work / "mem", ignore_errors=True)
    worst = max(peaks, key=lambda p: p[1])
    return [
        Figure("peak_rss", "memory", f"peak RSS, {rec['size'] / MIB:.0f} MiB package", round(worst[1], 1), "MiB",
               target="< 150", detail="; ".join(f"{label} {peak:.1f} MiB" for label, peak in peaks))
    ]  # fmt: skip


# ------------------------------------------------------------------ 5: scaling


def seed(server: Server, project: str, versions: int) -> None:
    for i in range(versions):
        traffic.synthetic_wheel(str(server.package_dir), project, f"1.0.{i}")


def listing_pairs(server: Server, args: dict[str, t.Any], url: str, rounds: int) -> list[tuple[float, float]]:
    session = requests.Session()
    session.trust_env = False
    pairs = []
    for r in range(rounds):

        def raw() -> float:
            start = time.perf_counter()
            resp = session.get(url, timeout=120)
            resp.raise_for_status()
            return time.perf_counter() - start

        b = raw() if r % 2 else 0.0
        _result, a = call_module(index_list, args)
        b = b or raw()
        pairs.append((a, b))
    session.close()
    return pairs


def bench_scaling(
    server: Server, work: Path, sizes: list[int], load_sizes: list[int], rounds: int
) -> tuple[list[Figure], dict]:
    figures, data = [], {}
    series = []
    # /simple/ with K projects: runs first, on the empty server, so K is exact.
    have = 0
    rows = []
    for k in sizes:
        for i in range(have, k):
            seed(server, f"bench-proj-{i}", 1)
        have = k
        pairs = listing_pairs(server, {"url": server.simple}, server.simple, rounds)
        rows.append((k, statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)))
    series.append(("simple_projects", "index_list /simple/ with N projects", rows))
    rows = []
    for k in sizes:
        project = f"bench-files-{k}"
        seed(server, project, k)
        pairs = listing_pairs(server, {"url": server.simple, "project": project}, f"{server.simple}{project}/", rounds)
        rows.append((k, statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)))
    series.append(("project_files", "index_list of a project with N files", rows))
    server.clear()
    rows = []
    for n in load_sizes:
        pairs = load_pairs(server, work, f"scale{n}", n, max(1, rounds // 2))
        rows.append((n, statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)))
    series.append(("load", "load_test with N uploads + N downloads", rows))

    for sid, label, rows in series:
        ns, mods, raws = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
        k = growth(ns, mods)
        share = statistics.mean(raw / mod for mod, raw in zip(mods, raws, strict=True) if mod > 0)
        where = f"server/raw request {share:.0%} of the module's time, harness {1 - share:.0%}"
        points = ", ".join(f"N={n}: {m * 1000:.0f} ms (raw {r * 1000:.0f} ms)" for n, m, r in rows)
        data[sid] = {"label": label, "points": [{"n": n, "module_s": round(m, 4), "raw_s": round(r, 4)} for n, m, r in rows],
                     "growth_exponent": None if math.isnan(k) else round(k, 3), "server_share": round(share, 3)}  # fmt: skip
        figures.append(
            Figure(f"scaling_{sid}", "scaling", label, round(mods[-1], 3), "s", round(raws[-1], 3),
                   round(mods[-1] / raws[-1], 3) if raws[-1] else None, "", f"{describe_growth(k)}; {where}; {points}")
        )  # fmt: skip
    return figures, data


# ------------------------------------------------------------------ 7: production mode on a big index


def pages_snapshot(server: Server, depth: str) -> float:
    """The baseline: the same snapshot with every project page read one by one (no flat listing)."""
    opts = httputil.ClientOptions(None, None, True, None, 5.0, 120.0)
    session = httputil.make_session(opts)
    start = time.perf_counter()
    try:
        snap = snapshot.take(session, server.simple, opts, depth=depth, flat=False)
    finally:
        session.close()
    if snap["mismatches"]:
        raise BenchError(f"the pages' snapshot found hash mismatches: {snap['mismatches'][:3]}")
    return time.perf_counter() - start


def bench_production(server: Server, sizes: list[int], rounds: int) -> tuple[list[Figure], dict]:
    """index_snapshot at each depth on an index of N projects (one wheel each), median of ``rounds``."""
    server.clear()
    data: dict[str, t.Any] = {"points": []}
    have = 0
    for n in sizes:
        for i in range(have, n):
            seed(server, f"bench-prod-{i}", 1)
        have = n
        point: dict[str, t.Any] = {"projects": n}
        for depth in snapshot.DEPTHS:
            secs = []
            for _ in range(rounds):
                result, took = call_module(index_snapshot, {"url": server.simple, "depth": depth})
                if result["project_count"] != n:
                    raise BenchError(f"index_snapshot saw {result['project_count']} projects, not {n}")
                secs.append(took)
            point[depth] = round(statistics.median(secs), 3)
        point["files_pages"] = round(statistics.median(pages_snapshot(server, "files") for _ in range(rounds)), 3)
        data["points"].append(point)
    server.clear()
    top = data["points"][-1]
    points = "; ".join(
        f"N={p['projects']}: names {p['names']:.2f} s, files {p['files']:.2f} s (pages {p['files_pages']:.2f} s), "
        f"bytes {p['bytes']:.2f} s"
        for p in data["points"]
    )
    figure = Figure(
        "production_snapshot",
        "production",
        f"index_snapshot depth files, {top['projects']} projects (production mode's before/after read)",
        top["files"],
        "s",
        baseline=top["files_pages"],
        ratio=round(top["files"] / top["files_pages"], 3) if top["files_pages"] else None,
        target="",
        detail=f"baseline: every project page read one by one; {points}",
    )
    return [figure], data


# ------------------------------------------------------------------ 1 + 6: the suite and Ansible overhead


def timer_env(out: Path) -> dict[str, str]:
    return {
        "ANSIBLE_CALLBACK_PLUGINS": str(PLUGINS),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
        "BENCH_TIMER_OUT": str(out),
    }


def bench_suite(work: Path, tags: str | None, extra: dict[str, t.Any]) -> tuple[list[Figure], dict]:
    timing = work / "suite-timer.json"
    args = ["--tags", tags] if tags else []
    start = time.perf_counter()
    run = run_playbook(ROOT / "verify.yml", work / "suite", extra=extra, args=args, env=timer_env(timing), timeout=900)
    wall = time.perf_counter() - start
    if run.rc != 0:
        tail = "\n".join(run.output.splitlines()[-15:])
        raise BenchError(f"verify.yml failed (rc {run.rc}); the benchmark needs a passing suite:\n{tail}")
    results = json.loads((run.report_dir / "results.json").read_text())
    tests = [{"id": x["id"], "status": x["status"], "seconds": x["duration"]} for x in results["tests"]]
    counts = results["counts"]
    breakdown = ", ".join(f"{x['id']} {x['seconds']:.1f}" for x in sorted(tests, key=lambda x: -x["seconds"])[:6])
    label = "verify.yml P0-P2, local target, warm .venv" if not tags else f"verify.yml --tags {tags} (smoke)"
    figures = [
        Figure("suite_warm", "suite", label, round(wall, 1), "s", target="<= 60",
               detail=f"{counts.get('passed', 0)} passed, {counts.get('skipped', 0)} skipped; slowest: {breakdown}")
    ]  # fmt: skip
    timer = json.loads(timing.read_text())
    return figures, {"wall": wall, "tests": tests, "timer": timer}


def bench_dispatch(work: Path, tasks: int) -> float:
    """Seconds per task of a module that does nothing (ansible.builtin.ping): Ansible's fixed cost per task."""
    book = work / "ping.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  connection: local\n"
        "  vars: {ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n  tasks:\n"
        + "".join(f"    - ansible.builtin.ping:\n      name: ping {i}\n" for i in range(tasks)).replace(
            "ping:\n      name", "ping: {}\n      name"
        )
    )
    out = work / "ping-timer.json"
    env = dict(os.environ, **timer_env(out))
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(book)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"the ping playbook failed: {proc.stdout[-400:]}{proc.stderr[-400:]}")
    secs = [x["seconds"] for x in json.loads(out.read_text())["tasks"] if x["status"] == "ok"]
    return statistics.median(secs)


def ansible_overhead(suite: dict, per_task: float) -> tuple[list[Figure], dict]:
    timer = suite["timer"]
    tasks = timer["tasks"]
    ran = [x for x in tasks if x["status"] != "skipped"]
    modules = [x for x in ran if x["action"] not in CONTROLLER_ACTIONS]
    controller = [x for x in ran if x["action"] in CONTROLLER_ACTIONS]
    in_tasks = sum(x["seconds"] for x in tasks)
    between = max(0.0, timer["wall"] - in_tasks)
    controller_s = sum(x["seconds"] for x in controller)
    skipped_s = sum(x["seconds"] for x in tasks if x["status"] == "skipped")
    dispatch = len(modules) * per_task
    outside = between + controller_s + skipped_s + dispatch
    data = {
        "tasks_total": len(tasks),
        "tasks_ran": len(ran),
        "tasks_skipped": len(tasks) - len(ran),
        "module_tasks": len(modules),
        "controller_tasks": len(controller),
        "playbook_wall_s": timer["wall"],
        "between_tasks_s": round(between, 2),
        "controller_tasks_s": round(controller_s, 2),
        "skipped_tasks_s": round(skipped_s, 2),
        "per_module_task_dispatch_s": round(per_task, 4),
        "outside_modules_s": round(outside, 2),
        "slowest_tasks": sorted(({"name": x["name"], "seconds": x["seconds"]} for x in tasks), key=lambda x: -x["seconds"])[:8],
    }  # fmt: skip
    figures = [
        Figure("ansible_tasks", "ansible", "tasks verify.yml ran (module / controller-only / skipped)", len(ran), "tasks",
               detail=f"{len(modules)} module, {len(controller)} controller-only, {data['tasks_skipped']} skipped"),
        Figure("ansible_outside_modules", "ansible", "time outside modules (estimate)", round(outside, 1), "s",
               detail=f"{outside / timer['wall']:.0%} of {timer['wall']:.1f} s: between tasks {between:.1f} s, "
               f"controller-only tasks {controller_s:.1f} s, skipped {skipped_s:.1f} s, "
               f"dispatch {len(modules)} x {per_task * 1000:.0f} ms (ansible.builtin.ping)"),
    ]  # fmt: skip
    return figures, data


def bench_cold(work: Path) -> Figure:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    start = time.perf_counter()
    proc = subprocess.run(
        ["make", "-C", str(clone), "verify"], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    secs = time.perf_counter() - start
    shutil.rmtree(clone, ignore_errors=True)
    if proc.returncode != 0:
        raise BenchError(f"cold make verify failed (rc {proc.returncode}): {proc.stdout[-600:]}{proc.stderr[-300:]}")
    return Figure("suite_cold", "suite", f"make verify in a fresh clone of {head.stdout.strip()} (new .venv)",
                  round(secs, 1), "s", target="<= 180", detail="venv creation and pinned installs included; pip's wheel cache is used")  # fmt: skip


# ------------------------------------------------------------------ output


def machine() -> dict[str, t.Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_mib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "ansible_core": version("ansible-core"),
        "pypiserver": version("pypiserver"),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g} {unit}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "collection", "raw baseline", "ratio", "target", "mark")]
    for f in figures:
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
        rows.append((f.label, fmt(f.value, f.unit), fmt(f.baseline, f.unit), ratio, f.target or "-", f.mark))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    details = [f"  {f.id}: {f.detail}" for f in figures if f.detail]
    return "\n".join(lines + ["", "details:", *details])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, two rounds, part of the suite, no cold run")
    parser.add_argument("--rounds", type=int, help="A/B rounds per comparison (default 5; smoke 2)")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-clone make verify")
    parser.add_argument("--no-suite", action="store_true", help="skip verify.yml and the Ansible figures")
    parser.add_argument(
        "--only",
        default="suite,cold,scaling,load,large,memory,production",
        help="comma-separated sections to run (default all): suite (with the Ansible figures), cold, scaling, load, "
        "large, memory, production",
    )
    parser.add_argument("--json", default=str(ROOT / "reports" / "bench.json"), help="where to write the figures")
    opts = parser.parse_args(argv)
    smoke = opts.smoke
    only = {x.strip() for x in opts.only.split(",") if x.strip()}
    if opts.no_suite:
        only.discard("suite")
    if opts.no_cold or smoke:
        only.discard("cold")
    rounds = opts.rounds or (2 if smoke else 5)
    sizes = [2, 5, 10] if smoke else [10, 100, 1000]
    prod_sizes = [10, 40] if smoke else [100, 500, 2000]
    load_sizes = [5, 10, 20] if smoke else [50, 100, 200]
    load_n = 10 if smoke else 100
    large_mib = 1 if smoke else 110
    mem_mib = 2 if smoke else 500
    if shutil.which("curl") is None:
        print("bench: curl is not on PATH; it is the raw baseline for large transfers (apt-get install curl).")
        return 2

    info = machine()
    figures: list[Figure] = []
    data: dict[str, t.Any] = {"mode": "smoke" if smoke else "full", "rounds": rounds, "machine": info}
    base = Path(tempfile.mkdtemp(prefix="pypi-bench-"))
    server = None
    start = time.perf_counter()
    try:
        if "suite" in only:
            print("bench: suite (verify.yml)", flush=True)
            extra: dict[str, t.Any] = {}
            suite_figs, suite = bench_suite(base, "connection,simple_index,upload" if smoke else None, extra)
            figures += suite_figs
            data["suite"] = {"wall_s": round(suite["wall"], 2), "tests": suite["tests"]}
            print("bench: Ansible overhead", flush=True)
            ans_figs, data["ansible"] = ansible_overhead(suite, bench_dispatch(base, 5 if smoke else 20))
            figures += ans_figs
        if "cold" in only:
            print("bench: cold make verify in a fresh clone", flush=True)
            figures.append(bench_cold(base))
        if only & {"scaling", "load", "large", "memory", "production"}:
            server = Server(base)
        scale_figs: list[Figure] = []
        if "scaling" in only:  # first: /simple/ must hold exactly the seeded projects (cleared afterwards)
            print("bench: scaling", flush=True)
            scale_figs, data["scaling"] = bench_scaling(server, base / "work", sizes, load_sizes, rounds)
        if "load" in only:
            print("bench: load harness overhead", flush=True)
            figures += bench_load(server, base / "work", load_n, rounds)
        if "large" in only:
            print("bench: large package", flush=True)
            figures += bench_large(server, base / "work", large_mib, rounds)
        if "memory" in only:
            print("bench: memory", flush=True)
            figures += bench_memory(server, base / "work", mem_mib)
        figures += scale_figs
        if "production" in only:
            print("bench: production mode on a big index", flush=True)
            prod_figs, data["production"] = bench_production(server, prod_sizes, max(1, rounds // 2))
            figures += prod_figs
    except (BenchError, ls.ServerError) as exc:
        print(f"bench: FAILED: {exc.msg if isinstance(exc, ls.ServerError) else exc}", file=sys.stderr)
        return 2
    except subprocess.TimeoutExpired as exc:
        print(f"bench: FAILED: {exc.cmd[0]} did not finish within {exc.timeout:g}s", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    data["seconds"] = round(time.perf_counter() - start, 1)
    data["figures"] = [dict(f._asdict(), mark=f.mark) for f in figures]
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(f"machine: {info['cpus']} x {info['cpu']}, {info['memory_mib']} MiB, Python {info['python']}, "
          f"ansible-core {info['ansible_core']}, pypiserver {info['pypiserver']}; load at start {info['load_avg_at_start']}")  # fmt: skip
    print(f"mode: {data['mode']}, {rounds} rounds per comparison, {data['seconds']} s\n")
    print(table(figures))
    print(f"\nwritten: {opts.json}")
    missed = [f.id for f in figures if f.mark == "miss"]
    if missed and not smoke:
        print(f"bench: target missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
