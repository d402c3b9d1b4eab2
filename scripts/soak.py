"""Soak: run the full verify.yml N times, each against a fresh local pypiserver, and count the passes.

    .venv/bin/python scripts/soak.py -n 20                          # or: make soak N=20
    .venv/bin/python scripts/soak.py -n 3 -- -e pypi_large_size_mib=1  # extra ansible-playbook arguments

Every run gets its own state, work and report directories under one temporary directory, which is
removed at the end. Per run it prints pass/fail, the wall time and the slowest test with its time;
at the end the pass count N/N. It exits 1 when any run failed, after listing each failed test with
its reason; the failed runs' reports and playbook output are kept under --keep-failed (default
reports/soak/). A failure is a bug to find and fix: nothing is retried.

It also checks what the teardown must guarantee: after each run no pypiserver it started is still
running (every PID the state file named is polled while the run goes) and the state dir is gone. A
leftover server is a failure of that run, and the script stops it by PID.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".venv" / "collections"))

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls  # noqa: E402
from tests.helpers import run_playbook  # noqa: E402


class PidWatch(threading.Thread):
    """Every PID the local target's state file names while the run goes (the restart makes a second one)."""

    def __init__(self, state_dir: Path):
        super().__init__(daemon=True)
        self.state_dir = state_dir
        self.seen: dict[int, str | None] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.look()
            time.sleep(0.05)

    def look(self) -> None:
        state = ls.read_state(str(self.state_dir))
        if state and state.get("pid"):
            self.seen.setdefault(int(state["pid"]), state.get("pid_start"))

    def finish(self) -> None:
        self.done.set()
        self.join(5)
        self.look()


def one_run(index: int, base: Path, args: list[str], timeout: float) -> dict[str, t.Any]:
    tmp = base / f"run-{index:03d}"
    tmp.mkdir()
    watch = PidWatch(tmp / "state")
    watch.start()
    t0 = time.monotonic()
    problems: list[str] = []
    output, results, report_dir = "", {}, tmp / "reports"
    try:
        run = run_playbook(ROOT / "verify.yml", tmp, args=args, timeout=timeout)
        output, results, report_dir = run.output, run.results, run.report_dir
        if run.rc != 0:
            problems.append(f"ansible-playbook exited {run.rc}")
    except Exception as exc:  # noqa: BLE001 - a hang or crash is this run's failure, the soak goes on
        problems.append(f"{type(exc).__name__}: {exc}")
    seconds = time.monotonic() - t0
    watch.finish()
    for pid, token in watch.seen.items():
        if ls.pid_alive(pid, token):
            problems.append(f"pypiserver PID {pid} still running after the teardown (stopped now)")
            ls.terminate(pid, token)
    if (tmp / "state").exists():
        problems.append(f"the state dir {tmp / 'state'} was not removed by the teardown")
    if not watch.seen:
        problems.append("no pypiserver was seen in the state dir")
    if not results:
        problems.append("no junit.xml was written")
    failed = {k: v["reason"] for k, v in results.items() if v["status"] == "failed"}
    timed = [(float(v.get("time") or 0), k) for k, v in results.items() if v["status"] != "skipped"]
    slowest = max(timed) if timed else (0.0, "-")
    return {
        "index": index,
        "ok": not problems and not failed,
        "seconds": seconds,
        "slowest": slowest,
        "failed": failed,
        "problems": problems,
        "counts": {s: sum(1 for v in results.values() if v["status"] == s) for s in ("passed", "failed", "skipped")},
        "output": output,
        "report_dir": report_dir,
        "tmp": tmp,
    }


def keep(result: dict[str, t.Any], keep_dir: Path, stamp: str) -> Path:
    dest = keep_dir / f"{stamp}-run-{result['index']:03d}"
    dest.mkdir(parents=True, exist_ok=True)
    if Path(result["report_dir"]).is_dir():
        shutil.copytree(result["report_dir"], dest / "reports", dirs_exist_ok=True)
    (dest / "output.log").write_text(result["output"])
    (dest / "failure.json").write_text(
        json.dumps({"failed": result["failed"], "problems": result["problems"]}, indent=2) + "\n"
    )
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="how many full runs (default 5)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take (default 1800)")
    parser.add_argument(
        "--keep-failed", default=str(ROOT / "reports" / "soak"), help="where failed runs' reports and output go"
    )
    parser.add_argument("playbook_args", nargs="*", help="extra ansible-playbook arguments, after --")
    opts = parser.parse_args(argv)
    if opts.runs < 1:
        parser.error("-n must be at least 1")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = Path(tempfile.mkdtemp(prefix="pypi_ops-soak-"))
    extra = f" {' '.join(opts.playbook_args)}" if opts.playbook_args else ""
    print(f"soak: {opts.runs} full run(s) of verify.yml{extra}, each on a fresh local pypiserver", flush=True)
    results: list[dict[str, t.Any]] = []
    t0 = time.monotonic()
    try:
        for index in range(1, opts.runs + 1):
            result = one_run(index, base, opts.playbook_args, opts.timeout)
            results.append(result)
            c = result["counts"]
            slow_s, slow_id = result["slowest"]
            print(
                f"run {index:>3}/{opts.runs}  {'PASSED' if result['ok'] else 'FAILED'}  {result['seconds']:7.1f} s  "
                f"slowest: {slow_id} {slow_s:.1f} s  ({c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped)",
                flush=True,
            )
            if not result["ok"]:
                for test_id, reason in result["failed"].items():
                    print(f"    {test_id}: {reason}", flush=True)
                for problem in result["problems"]:
                    print(f"    run: {problem}", flush=True)
                print(f"    kept in {keep(result, Path(opts.keep_failed), stamp)}", flush=True)
            shutil.rmtree(result["tmp"], ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    passed = sum(1 for r in results if r["ok"])
    total_s = time.monotonic() - t0
    times = sorted(r["seconds"] for r in results)
    print(
        f"soak: {passed}/{len(results)} runs passed in {total_s / 60:.1f} min "
        f"(run time min {times[0]:.1f} s, median {times[len(times) // 2]:.1f} s, max {times[-1]:.1f} s)"
    )
    bad = [r for r in results if not r["ok"]]
    if bad:
        print("failed runs:")
        for r in bad:
            causes = [f"{k}: {v}" for k, v in r["failed"].items()] + r["problems"]
            print(f"  run {r['index']}: " + " | ".join(causes))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
