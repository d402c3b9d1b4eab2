"""Run the real `ansible-test sanity` on this collection, on a machine without ci-files.testing.ansible.com.

    .venv/bin/python scripts/sanity.py                        # the default test set (make lint runs this)
    .venv/bin/python scripts/sanity.py --test validate-modules  # extra arguments go to ansible-test sanity

ansible-test (the copy in .venv, pinned by constraints.txt) creates one virtual environment per sanity test and
bootstraps pip into it with a get-pip script that it downloads from ci-files.testing.ansible.com, unless the script
is already in its cache, ~/.ansible/test/cache/get_pip_<version>.py (ansible-test's own error message says to place
it there by hand). It then runs pip with an environment reduced to PATH, HOME and LC_ALL. This script makes both work
without touching the user's home or the checkout:

- Everything lives under one cache directory, $PYPI_OPS_SANITY_CACHE or ~/.cache/pypi-ops/sanity. ansible-test runs
  with HOME set to <cache>/home, so its cache (bootstrap script, sanity venvs) lives there too.
- The bootstrap script is written by this script: it installs the pip wheel that ansible-test asks for (its version
  comes from ansible-test itself) from a local copy, checked against the sha256 pinned below, with --no-index. The
  wheel is downloaded once from the package index with the caller's PIP_* environment (pip config files are
  ignored, PIP_CONFIG_FILE=/dev/null, as everywhere in this project).
- HOME survives the reduced environment, so <cache>/home/.config/pip/pip.conf carries the CA bundle (the first of
  PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE that names a file) and PIP_INDEX_URL of the caller's environment to
  the pip runs inside the sanity venvs. The packages those venvs get are pinned by
  ansible-test itself (ansible_test/_data/requirements/sanity.*.txt).
- ansible-test wants the collection at .../ansible_collections/pypi_ops/pypiserver; the checkout is copied there
  (<cache>/tree): every file git tracks or would track (git ls-files --cached --others --exclude-standard), so
  .venv, reports and other ignored files stay out. The copy is updated in place; files gone from the checkout go.

Every sanity test ansible-test offers for a collection runs; those in PARTIAL below run on part of the tree only
(the reason is printed; `--no-skip` or `--test NAME` runs them on everything). One run at a time per cache directory (a lock file). Exit status
is ansible-test's.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
ANSIBLE_TEST = VENV / "bin" / "ansible-test"
CACHE = Path(os.environ.get("PYPI_OPS_SANITY_CACHE") or Path.home() / ".cache" / "pypi-ops" / "sanity")
COLLECTION = ("pypi_ops", "pypiserver")
# The sanity tests run on the Python of .venv (make dev creates it; tests/config.yml: the controller's versions).
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

# The pip wheels ansible-test may ask for, by version, with their sha256 from PyPI.
PIP_WHEELS = {
    "24.2": "2cd581cf58ab7fcfca4ce8efa6dcacd0de5bf8d0a3eb9ec927e07405f4d9e2a2",
}

# Sanity tests the default run gives only part of the tree, with the reason (--test NAME runs one on everything).
PARTIAL = {
    "pylint": (
        ["plugins/"],
        "plugins/ only: ansible-test's pylint profile for collections forbids `_` as a name, which tests/ and "
        "scripts/ use about 70 times",
    ),
}

BOOTSTRAP = '''"""pip bootstrap for ansible-test, written by scripts/sanity.py in place of get-pip.py.

It installs pip from the wheel next to it, without the network: {wheel}
ansible-test runs it as `python get_pip_X_Y.py --disable-pip-version-check pip==X.Y [--no-setuptools] [--no-wheel]`.
"""
import sys

WHEEL = {wheel!r}


def main():
    # get-pip.py options: only stop it from adding setuptools/wheel, which this script never adds.
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    sys.path.insert(0, WHEEL)
    from pip._internal.cli.main import main as pip_main

    sys.exit(pip_main(["install", "--no-index", "--find-links", {wheel_dir!r}, "--upgrade", "--force-reinstall", *args]))


if __name__ == "__main__":
    main()
'''


def fail(message: str) -> None:
    print(f"sanity: {message}", file=sys.stderr)
    sys.exit(2)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wanted_pip_version() -> str:
    """The pip version ansible-test bootstraps into its sanity venvs, from ansible-test itself."""
    code = (
        "import sys\n"
        "from ansible_test._internal.host_configs import NativePythonConfig\n"
        "from ansible_test._internal.python_requirements import get_venv_packages\n"
        f"print(get_venv_packages(NativePythonConfig(version={PYTHON!r}, path=sys.executable))['pip'])\n"
    )
    out = subprocess.run([str(PY), "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"could not ask ansible-test which pip it bootstraps ({last}); run make dev.")
    return out.stdout.strip()


def prepare_bootstrap(home: Path) -> None:
    version = wanted_pip_version()
    digest = PIP_WHEELS.get(version)
    if digest is None:
        fail(
            f"ansible-test bootstraps pip {version}, which scripts/sanity.py has no pinned sha256 for; add it to PIP_WHEELS."
        )
    wheel_dir = CACHE / "wheels"
    wheel = wheel_dir / f"pip-{version}-py3-none-any.whl"
    if not wheel.is_file() or sha256(wheel) != digest:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
        cmd = [str(PY), "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        cmd += ["--dest", str(wheel_dir), f"pip=={version}"]
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            fail(f"could not download pip {version} from the package index (see pip's message above).")
        if sha256(wheel) != digest:
            wheel.unlink()
            fail(f"the downloaded pip {version} wheel does not match the pinned sha256; removed it.")
    script = home / ".ansible" / "test" / "cache" / f"get_pip_{version.replace('.', '_')}.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    text = BOOTSTRAP.format(wheel=str(wheel), wheel_dir=str(wheel_dir))
    if not script.is_file() or script.read_text() != text:
        script.write_text(text)


def prepare_pip_conf(home: Path) -> None:
    """The caller's CA bundle and index for the pip runs in the sanity venvs (their environment is only PATH+HOME)."""
    lines = ["[global]", "disable-pip-version-check = true"]
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            lines.append(f"cert = {os.environ[name]}")
            break
    for name, key in (("PIP_INDEX_URL", "index-url"), ("PIP_TRUSTED_HOST", "trusted-host")):
        if os.environ.get(name):
            lines.append(f"{key} = {os.environ[name]}")
    conf = home / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("\n".join(lines) + "\n")


def sync_tree(tree: Path) -> None:
    """Copy the checkout's files (as git sees them) to tree, updating only what changed."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if out.returncode != 0:
        fail(f"git ls-files failed in {ROOT}: {out.stderr.decode(errors='replace').strip()}")
    wanted = set()
    for name in out.stdout.decode().split("\0"):
        src = ROOT / name
        if not name or not (src.is_file() or src.is_symlink()):
            continue  # deleted in the work tree, not yet in the index
        wanted.add(name)
        dst = tree / name
        if src.is_symlink():
            if dst.is_symlink() and os.readlink(dst) == os.readlink(src):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists() or dst.is_symlink():
                dst.unlink()
            os.symlink(os.readlink(src), dst)
            continue
        st = src.stat()
        if dst.is_file() and not dst.is_symlink():
            dt = dst.stat()
            if dt.st_size == st.st_size and dt.st_mtime_ns == st.st_mtime_ns and dt.st_mode == st.st_mode:
                continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink():
            dst.unlink()
        shutil.copy2(src, dst)
    for dirpath, dirnames, filenames in os.walk(tree, topdown=False):
        for fname in filenames:
            path = Path(dirpath) / fname
            rel = path.relative_to(tree).as_posix()
            if rel not in wanted and not rel.startswith("tests/output/"):
                path.unlink()
        for dname in dirnames:
            path = Path(dirpath) / dname
            if path.is_symlink():
                if path.relative_to(tree).as_posix() not in wanted:
                    path.unlink()
            elif not any(path.iterdir()):
                path.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-skip", action="store_true", help="run the PARTIAL tests on the whole tree too")
    args, rest = parser.parse_known_args()
    if not ANSIBLE_TEST.is_file():
        fail(f"{ANSIBLE_TEST} is missing; run make dev first.")
    if Path(sys.prefix).resolve() != VENV.resolve():
        fail(f"run this script with {PY} (it is {sys.executable}), so that the tests use the venv's Python.")
    home = CACHE / "home"
    tree = CACHE / "tree" / "ansible_collections" / COLLECTION[0] / COLLECTION[1]
    CACHE.mkdir(parents=True, exist_ok=True)
    lock = open(CACHE / "lock", "w")  # held (flock) until the process exits
    fcntl.flock(lock, fcntl.LOCK_EX)
    started = time.monotonic()
    prepare_bootstrap(home)
    prepare_pip_conf(home)
    sync_tree(tree)
    print(f"sanity: checkout copied to {tree} ({time.monotonic() - started:.1f} s)", flush=True)
    base = [str(ANSIBLE_TEST), "sanity", "--python", PYTHON, "--color", "no"]
    env = {
        "HOME": str(home),
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    runs = [base + rest]
    if not args.no_skip and not any(arg == "--test" or arg.startswith("--test=") for arg in rest):
        runs = [base + [arg for name in PARTIAL for arg in ("--skip-test", name)] + rest]
        for name, (targets, reason) in PARTIAL.items():
            print(f"sanity: {name} runs on {reason}", flush=True)
            runs.append(base + ["--test", name, *rest, *targets])
    return max(subprocess.run(cmd, cwd=tree, env=env, check=False).returncode for cmd in runs)


if __name__ == "__main__":
    sys.exit(main())
