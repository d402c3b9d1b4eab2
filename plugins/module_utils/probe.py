# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build an sdist and a wheel, from a project on disk or from a generated probe package.

A probe is a real, minimal setuptools project whose only job is to be uploaded
to the index under test, installed back and imported: its ``__version__``
proves which release pip resolved, and an optional incompressible payload gives
it a chosen size. The source tree is written in Python and built with one
``python -m build --no-isolation`` call (no download of build requirements).

Builds are idempotent through a small stamp file per name/version kept in a
hidden directory of ``dest`` (pypiserver does not list dot-directories).
"""

from __future__ import annotations

import base64
import hashlib
import json
import keyword
import os
import re
import shutil
import sys
import tempfile
import typing as t
import zipfile

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import digest, install, runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    HAS_PACKAGING = True
    PACKAGING_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - packaging ships with ansible-core
    HAS_PACKAGING = False
    PACKAGING_IMPORT_ERROR = exc

FORMATS = ("wheel", "sdist")
STATE_DIR = ".pypi_ops_build"
STAMP_SCHEMA = 1
DEFAULT_REQUIRES_PYTHON = ">=3.8"
BUILDERS = ("build", "direct")
# PEP 508 project name: letters/digits at both ends, . _ - inside.
NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# Directories that never belong to a project's source fingerprint.
SKIP_DIRS = {"build", "dist", "__pycache__", "node_modules", "venv"}


class ProbeError(Exception):
    """A build failure with one clear message and, when there was a build, its output's tail."""

    def __init__(self, msg: str, output_tail: list[str] | None = None):
        super().__init__(msg)
        self.msg = msg
        self.output_tail = output_tail or []


class ProbeSpec(t.NamedTuple):
    name: str  # normalized (PEP 503)
    version: str  # normalized (PEP 440)
    import_name: str
    payload_size: int = 0
    dependencies: tuple[str, ...] = ()  # PEP 508 requirements (Requires-Dist)
    extras: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (extra, its requirements), sorted by extra
    requires_python: str = DEFAULT_REQUIRES_PYTHON
    builder: str = "build"  # build: python -m build (setuptools); direct: write_wheel (a wheel, in milliseconds)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    def params(self) -> dict[str, t.Any]:
        # as JSON has it (lists, not tuples), so that the stamp read back compares equal
        params: dict[str, t.Any] = json.loads(json.dumps({"kind": "probe", **self._asdict()}))
        return params


def validate_name(name: t.Any) -> str:
    """Return the normalized name, or raise ProbeError naming the bad value."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ProbeError(
            f"Invalid package name {name!r}: a name is letters, digits and . _ - only, starting and ending with a "
            "letter or digit (PEP 508), e.g. 'pypi-ops-probe'."
        )
    return si.normalize(name)


def validate_version(version: t.Any) -> str:
    """Return the normalized PEP 440 version, or raise ProbeError naming the bad value."""
    _require_packaging()
    try:
        return str(Version(str(version)))
    except InvalidVersion:
        raise ProbeError(
            f"Invalid version {str(version)!r}: it is not a PEP 440 version; use one like '1.0.0', '2.1.0rc1' "
            "or '1.0.0.post1'."
        ) from None


def validate_import_name(import_name: t.Any) -> str:
    if not isinstance(import_name, str) or not import_name.isidentifier() or keyword.iskeyword(import_name):
        raise ProbeError(
            f"Invalid import_name {import_name!r}: it must be a Python identifier (letters, digits, underscores, "
            "not starting with a digit), e.g. 'pypi_ops_probe'."
        )
    return import_name


def validate_requirements(values: t.Any, what: str) -> tuple[str, ...]:
    """PEP 508 requirement strings, each parsed by ``packaging``; ProbeError names the first bad one."""
    _require_packaging()
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ProbeError(f"Invalid {what} {values!r}: give a list of requirements, e.g. ['pypi-ops-probe-b>=1.0'].")
    out = []
    for value in values:
        try:
            out.append(str(Requirement(str(value))))
        except InvalidRequirement as exc:
            raise ProbeError(
                f"Invalid requirement {value!r} in {what}: it is not PEP 508 ({exc}); write it like 'name>=1.0'."
            ) from None
    return tuple(out)


def validate_extras(extras: t.Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not extras:
        return ()
    if not isinstance(extras, dict):
        raise ProbeError(
            f"Invalid extras {extras!r}: give a mapping of extra name to requirements, e.g. {{cli: [click]}}."
        )
    out = []
    for extra, reqs in sorted(extras.items()):
        if not isinstance(extra, str) or not NAME_RE.match(extra):
            raise ProbeError(f"Invalid extra name {extra!r}: letters, digits and . _ - only, e.g. 'extra'.")
        out.append((si.normalize(extra), validate_requirements(reqs, f"extras[{extra}]")))
    return tuple(out)


def validate_requires_python(value: t.Any) -> str:
    _require_packaging()
    try:
        return str(SpecifierSet(str(value)))
    except InvalidSpecifier:
        raise ProbeError(f"Invalid requires_python {value!r}: give a version specifier such as '>=3.8'.") from None


def probe_spec(
    name: t.Any,
    version: t.Any,
    import_name: str | None = None,
    payload_size: int = 0,
    dependencies: t.Any = None,
    extras: t.Any = None,
    requires_python: t.Any = None,
    builder: str = "build",
) -> ProbeSpec:
    """Validate probe parameters (before anything is built) and return the normalized spec."""
    if builder not in BUILDERS:
        raise ProbeError(f"Invalid builder {builder!r}: use one of {list(BUILDERS)}.")
    norm = validate_name(name)
    ver = validate_version(version)
    imp = validate_import_name(import_name or install.default_import_name(norm))
    try:
        size = int(payload_size or 0)
    except (TypeError, ValueError):
        raise ProbeError(f"Invalid payload_size {payload_size!r}: give a number of bytes, e.g. 3145728.") from None
    if size < 0:
        raise ProbeError(f"Invalid payload_size {size}: it must be 0 or more bytes.")
    return ProbeSpec(
        norm,
        ver,
        imp,
        size,
        validate_requirements(dependencies, "dependencies"),
        validate_extras(extras),
        validate_requires_python(requires_python or DEFAULT_REQUIRES_PYTHON),
        builder,
    )


def write_payload(path: str, size: int, chunk: int = digest.CHUNK) -> None:
    """Write ``size`` incompressible random bytes, one chunk at a time."""
    remaining = size
    with open(path, "wb") as handle:
        while remaining > 0:
            block = os.urandom(min(chunk, remaining))
            handle.write(block)
            remaining -= len(block)


def write_probe_project(spec: ProbeSpec, src_dir: str) -> str:
    """Write the probe's setuptools project into ``src_dir`` (created; emptied first if it exists)."""
    if os.path.isdir(src_dir):
        shutil.rmtree(src_dir)
    pkg_dir = os.path.join(src_dir, spec.import_name)
    os.makedirs(pkg_dir)
    package_data = '["payload.bin"]' if spec.payload_size > 0 else "[]"
    extras_table = ""
    if spec.extras:
        lines = [f"{json.dumps(extra)} = [{', '.join(json.dumps(r) for r in reqs)}]" for extra, reqs in spec.extras]
        extras_table = "[project.optional-dependencies]\n" + "\n".join(lines) + "\n\n"
    pyproject = f"""[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{spec.name}"
version = "{spec.version}"
description = "Probe package built by pypi_ops.pypiserver to test a package index"
requires-python = {json.dumps(spec.requires_python)}
dependencies = [{", ".join(json.dumps(r) for r in spec.dependencies)}]

{extras_table}[tool.setuptools]
packages = ["{spec.import_name}"]
include-package-data = false

[tool.setuptools.package-data]
{spec.import_name} = {package_data}
"""
    with open(os.path.join(src_dir, "pyproject.toml"), "w", encoding="utf-8") as handle:
        handle.write(pyproject)
    with open(os.path.join(pkg_dir, "__init__.py"), "w", encoding="utf-8") as handle:
        handle.write(f'"""Probe package {spec.name}."""\n\n__version__ = "{spec.version}"\n')
    if spec.payload_size > 0:
        write_payload(os.path.join(pkg_dir, "payload.bin"), spec.payload_size)
    return src_dir


def metadata_text(spec: ProbeSpec) -> str:
    """The core metadata (2.1) of a probe: name, version, Requires-Python, Requires-Dist, Provides-Extra."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {spec.name}",
        f"Version: {spec.version}",
        "Summary: Probe package built by pypi_ops.pypiserver to test a package index",
        f"Requires-Python: {spec.requires_python}",
    ]
    lines += [f"Requires-Dist: {req}" for req in spec.dependencies]
    for extra, reqs in spec.extras:
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {req}{" and" if ";" in req else ";"} extra == "{extra}"' for req in reqs]
    return "\n".join(lines) + "\n"


def write_wheel(spec: ProbeSpec, dest_dir: str, metadata: str | None = None) -> str:
    """Write a valid pure-Python wheel of ``spec`` (PEP 427: stored members, a RECORD with every sha256) without a
    build backend; its package imports and names ``__version__``. Return the wheel's path."""
    dist = spec.name.replace("-", "_")
    info = f"{dist}-{spec.version}.dist-info"
    path = os.path.join(dest_dir, f"{dist}-{spec.version}-py3-none-any.whl")
    os.makedirs(dest_dir, exist_ok=True)
    members: list[tuple[str, bytes]] = [
        (
            f"{spec.import_name}/__init__.py",
            f'"""Probe package {spec.name}."""\n\n__version__ = "{spec.version}"\n'.encode(),
        ),
        (f"{info}/METADATA", (metadata if metadata is not None else metadata_text(spec)).encode()),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: pypi_ops.pypiserver\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{info}/top_level.txt", f"{spec.import_name}\n".encode()),
    ]
    record = []

    def recorded(arcname: str, sha: t.Any, size: int) -> None:
        b64 = base64.urlsafe_b64encode(sha.digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={b64},{size}")

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as whl:
        for arcname, data in members:
            whl.writestr(arcname, data)
            recorded(arcname, hashlib.sha256(data), len(data))
        if spec.payload_size:
            # incompressible random bytes, streamed into the archive a chunk at a time (a large probe never sits
            # in memory whole)
            arcname, sha, remaining = f"{spec.import_name}/payload.bin", hashlib.sha256(), spec.payload_size
            with whl.open(arcname, "w", force_zip64=spec.payload_size > 0x7FFFFFFF) as member:
                while remaining > 0:
                    block = os.urandom(min(digest.CHUNK, remaining))
                    member.write(block)
                    sha.update(block)
                    remaining -= len(block)
            recorded(arcname, sha, spec.payload_size)
        record.append(f"{info}/RECORD,,")
        whl.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def check_source_dir(source_dir: str) -> str:
    path = os.path.abspath(source_dir)
    if not os.path.isdir(path):
        raise ProbeError(f"source_dir {path} does not exist or is not a directory; point it at a Python project.")
    if not any(os.path.isfile(os.path.join(path, f)) for f in ("pyproject.toml", "setup.py")):
        raise ProbeError(
            f"source_dir {path} has neither pyproject.toml nor setup.py, so it is not a buildable Python project."
        )
    return path


def source_fingerprint(source_dir: str) -> str:
    """sha256 over relative paths and contents of a project's files (VCS, build output and dot-dirs skipped)."""
    total = hashlib.sha256()
    for root, dirs, files in os.walk(source_dir):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(files):
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue
            sha, size = digest.sha256_file(path)
            total.update(f"{os.path.relpath(path, source_dir)}\0{size}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return total.hexdigest()


def build_argv(python: str, src: str, out_dir: str, formats: t.Sequence[str], stored: bool = False) -> list[str]:
    """``stored``: a wheel-only build zips without compression (setuptools' ``bdist_wheel --compression stored``).

    Used for probes with a random payload: deflating incompressible bytes cost 2.3 of 3.5 s for 110 MiB and
    gained nothing; the wheel stays a valid zip.
    """
    argv = [python, "-m", "build", "--no-isolation"]
    if "sdist" in formats:
        argv.append("--sdist")
    if "wheel" in formats:
        argv.append("--wheel")
    if stored and list(formats) == ["wheel"]:
        argv.append("-C--build-option=--compression=stored")
    return argv + ["--outdir", out_dir, src]


def classify(filename: str) -> tuple[str, str, str] | None:
    """(kind, normalized name, version) of a dist filename, or None if it is not one."""
    _require_packaging()
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return "wheel", str(name), str(version)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return "sdist", str(name), str(version)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def run_build(
    module: t.Any | None,
    python: str,
    src: str,
    out_dir: str,
    formats: t.Sequence[str],
    timeout: float,
    stored: bool = False,
) -> dict[str, str]:
    """Run one ``python -m build`` and return {kind: path} of what it produced."""
    argv = build_argv(python, src, out_dir, formats, stored)
    res = runner.run(module, argv, timeout, env={"PYTHONDONTWRITEBYTECODE": "1"}, cwd=src)
    output = runner.tail(res.text, 25).splitlines()
    if res.timed_out:
        raise ProbeError(
            f"python -m build for {src} did not finish within {timeout:g}s (timeout); raise timeout.", output
        )
    if res.rc != 0:
        hint = ""
        if "No module named build" in res.text:
            hint = f" The interpreter {python} lacks the 'build' package: install build and setuptools there."
        elif "BackendUnavailable" in res.text or "Cannot import" in res.text:
            hint = " The build backend is not importable without isolation: install it next to 'build'."
        raise ProbeError(
            f"python -m build failed for {src} (rc={res.rc}).{hint} Last lines:\n" + "\n".join(output), output
        )
    produced: dict[str, str] = {}
    for filename in sorted(os.listdir(out_dir)):
        info = classify(filename)
        if info:
            produced[info[0]] = os.path.join(out_dir, filename)
    missing = [f for f in formats if f not in produced]
    if missing:
        raise ProbeError(f"python -m build succeeded but produced no {'/'.join(missing)} in {out_dir}.", output)
    return produced


def _require_packaging() -> None:
    if not HAS_PACKAGING:  # pragma: no cover
        raise ProbeError(f"The 'packaging' library is required on the controller: {PACKAGING_IMPORT_ERROR}")


def _state_dir(dest: str) -> str:
    return os.path.join(dest, STATE_DIR)


def stamp_path(dest: str, key: str) -> str:
    return os.path.join(_state_dir(dest), f"{key}.json")


def read_stamp(path: str) -> dict[str, t.Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == STAMP_SCHEMA else None


def up_to_date(
    stamp: dict[str, t.Any] | None, dest: str, params: dict[str, t.Any], formats: t.Sequence[str]
) -> dict[str, dict[str, t.Any]] | None:
    """The recorded dists {kind: record} if the stamp matches ``params`` and the files are intact; else None."""
    if not stamp or stamp.get("params") != params:
        return None
    files = stamp.get("files") or {}
    records: dict[str, dict[str, t.Any]] = {}
    for kind in formats:
        entry = files.get(kind)
        if not entry:
            return None
        path = os.path.join(dest, entry.get("filename", ""))
        if not os.path.isfile(path) or os.path.getsize(path) != entry.get("size"):
            return None
        record = digest.file_record(path)
        if record["sha256"] != entry.get("sha256"):
            return None
        records[kind] = record
    return records


def _write_stamp(path: str, params: dict[str, t.Any], records: dict[str, dict[str, t.Any]]) -> None:
    data = {
        "schema": STAMP_SCHEMA,
        "params": params,
        "files": {k: {"filename": r["filename"], "size": r["size"], "sha256": r["sha256"]} for k, r in records.items()},
    }
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _result(records: dict[str, dict[str, t.Any]], formats: t.Sequence[str], **extra: t.Any) -> dict[str, t.Any]:
    # each file carries its project name and version, so a list of files from several builds stays self-describing
    ident = {k: extra[k] for k in ("name", "version") if k in extra}
    files = [dict(records[k], kind=k, **ident) for k in FORMATS if k in records and k in formats]
    out: dict[str, t.Any] = {"files": files, "wheel": None, "sdist": None}
    for item in files:
        out[item["kind"]] = item
    out.update(extra)
    return out


def build(
    module: t.Any | None,
    dest: str,
    probe: ProbeSpec | None = None,
    source_dir: str | None = None,
    formats: t.Sequence[str] = FORMATS,
    force: bool = False,
    check_mode: bool = False,
    timeout: float = 300,
    python: str | None = None,
    import_name: str | None = None,
) -> dict[str, t.Any]:
    """Build (or reuse) the dists; return the module's result dict (``changed`` included).

    Exactly one of ``probe`` and ``source_dir``. Raises ProbeError with one clear message.
    """
    if (probe is None) == (source_dir is None):
        raise ProbeError("Give exactly one of probe and source_dir.")
    formats = [f for f in FORMATS if f in formats]
    if not formats:
        raise ProbeError(f"formats is empty; use any of {list(FORMATS)}.")
    python = python or sys.executable
    dest = os.path.abspath(dest)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ProbeError(f"dest {dest} exists and is not a directory.")

    if probe is not None:
        params = probe.params()
        key = probe.key
        src = os.path.join(_state_dir(dest), "src", probe.key)
    else:
        src = check_source_dir(t.cast(str, source_dir))
        params = {"kind": "source", "source_dir": src, "fingerprint": source_fingerprint(src)}
        key = "src-" + hashlib.sha256(src.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stamp_file = stamp_path(dest, key)
    stamp = read_stamp(stamp_file)

    existing = None if force else up_to_date(stamp, dest, params, formats)
    if existing is not None:
        return _describe(existing, formats, probe, src, import_name, changed=False)
    if check_mode:
        planned = {"changed": True, "files": [], "wheel": None, "sdist": None, "source_dir": src}
        if probe is not None:
            planned.update(name=probe.name, version=probe.version, import_name=probe.import_name)
            planned["expected_version"] = probe.version
        planned["msg"] = f"Would build {' and '.join(formats)} in {dest}."
        return planned

    direct = probe is not None and probe.builder == "direct"
    if direct and formats != ["wheel"]:
        raise ProbeError("builder 'direct' writes wheels only; set formats: [wheel], or use builder 'build'.")
    os.makedirs(_state_dir(dest), exist_ok=True)
    if probe is not None and not direct:
        write_probe_project(probe, src)
    out_dir = tempfile.mkdtemp(prefix="out-", dir=_state_dir(dest))
    try:
        stored = probe is not None and probe.payload_size > 0  # random bytes: deflate would only cost time
        if direct:
            produced = {"wheel": write_wheel(t.cast(ProbeSpec, probe), out_dir)}
        else:
            produced = run_build(module, python, src, out_dir, formats, timeout, stored)
        # Dists of the previous build of the same project that this build does not replace are stale.
        for entry in ((stamp or {}).get("files") or {}).values():
            old = os.path.join(dest, entry.get("filename", ""))
            if entry.get("filename") and os.path.isfile(old):
                os.remove(old)
        records = {}
        for kind, path in produced.items():
            final = os.path.join(dest, os.path.basename(path))
            os.replace(path, final)
            records[kind] = digest.file_record(final)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    _write_stamp(stamp_file, params, records)
    return _describe(records, formats, probe, src, import_name, changed=True)


def _describe(
    records: dict[str, dict[str, t.Any]],
    formats: t.Sequence[str],
    probe: ProbeSpec | None,
    src: str,
    import_name: str | None,
    changed: bool,
) -> dict[str, t.Any]:
    if probe is not None:
        name, version, imp = probe.name, probe.version, probe.import_name
    else:
        first = records[formats[0]]
        _kind, name, version = t.cast(tuple, classify(first["filename"]))
        imp = import_name or install.default_import_name(name)
    return _result(
        records,
        formats,
        changed=changed,
        name=name,
        version=version,
        import_name=imp,
        expected_version=version,
        source_dir=src,
    )
