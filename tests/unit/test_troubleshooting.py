"""docs/troubleshooting.md and the code agree, in both directions, so the table cannot silently rot.

- Code -> doc: for a set of key messages (spread over every area), the fixed parts of the message are read
  from the code (the string literal, f-string or YAML ``fail_msg``/``msg`` that holds an anchor) and each
  distinctive fixed part must appear in the doc.
- Doc -> code: every row of every table names its source (``path`` or ``path:function``); each fixed part of
  the row's message (the text between ``<...>`` placeholders and ``…`` elisions) must still be in that source.
  Messages are often assembled from several literals (a sentence plus a hint), so a fixed part may be covered
  by consecutive pieces of the source's literals; every piece must be long (6+ characters), punctuation, or a
  whole run of one literal (such as `` (HTTP `` in ``f" (HTTP {status})"``).
- Every file that can print a failure or a warning is the source of at least one row.

Whitespace is normalized everywhere; nothing but text is compared (no f-string is evaluated).
"""

from __future__ import annotations

import ast
import functools
import re
import typing as t
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

DOC = ROOT / "docs" / "troubleshooting.md"
HOLE = "\x00"  # stands for an interpolated value ({...} in an f-string, {{ ... }} in Jinja)
PLACEHOLDER = re.compile(r"<[^<>]*>")
ELISION = "…"
MIN_PIECE = 6  # shortest piece (with letters or digits) a fixed part may be assembled from
MIN_DISTINCT = 15  # every row needs at least this much fixed text
MIN_KEY_RUN = 12  # fixed runs of a key message shorter than this are not required in the doc


def norm(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- reading the code


@functools.cache
def _python_literals(path: Path, scope: str | None) -> tuple[str, ...]:
    """String literals (f-strings with HOLE for each value) in ``scope`` (a def, class or assigned name) of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    roots: list[ast.AST] = []
    if scope is None:
        roots = [tree]
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == scope:
                roots.append(node)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(x, ast.Name) and x.id == scope for x in targets):
                    roots.append(node)
    if not roots:
        raise AssertionError(f"{path.relative_to(ROOT)} has no function, class or name {scope!r}")
    out: list[str] = []
    for root in roots:
        for node in ast.walk(root):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(re.sub(r"%[sdr]|\{\w*\}", HOLE, node.value))  # %-style and str.format fields
            elif isinstance(node, ast.JoinedStr):
                out.append("".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values))
    return tuple(out)


def _resolve(path: str) -> Path:
    """A source path: relative to the collection root, or ``ansible/...`` inside the installed ansible-core."""
    if path.startswith("ansible/"):
        import ansible

        return Path(ansible.__file__).resolve().parent.parent / path
    return ROOT / path


@functools.cache
def source_text(source: str) -> str:
    """Normalized text of one source (``path`` or ``path:name``): literals for Python, the file for the rest."""
    path, _, scope = source.partition(":")
    file = _resolve(path)
    assert file.is_file(), f"source {source}: {file} does not exist"
    if file.suffix == ".py":
        return HOLE.join(norm(x) for x in _python_literals(file, scope or None))
    assert not scope, f"source {source}: only Python sources take a :name"
    return norm(file.read_text(encoding="utf-8").replace('\\"', '"'))


def _jinja_runs(value: str) -> list[str]:
    """Fixed runs of a YAML message: text outside {{ }}, and the quoted string literals inside it."""
    runs: list[str] = []
    last = 0
    for match in re.finditer(r"\{\{(.*?)\}\}", value, re.S):
        runs.append(value[last : match.start()])
        for single, double in re.findall(r"'([^']*)'|\"([^\"]*)\"", match.group(1)):
            runs.append(single or double)
        last = match.end()
    runs.append(value[last:])
    return runs


def _yaml_messages(node: t.Any) -> t.Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("fail_msg", "msg", "pypi_test_skip") and isinstance(value, str):
                yield value
            else:
                yield from _yaml_messages(value)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_messages(item)


def key_runs(source: str, anchor: str) -> list[str]:
    """The distinctive fixed runs of the one message in ``source`` that contains ``anchor``."""
    path, _, scope = source.partition(":")
    file = _resolve(path)
    if file.suffix == ".py":
        found = [x.split(HOLE) for x in _python_literals(file, scope or None) if anchor in norm(x)]
    elif file.suffix in (".yml", ".yaml"):
        found = [_jinja_runs(m) for m in _yaml_messages(yaml.safe_load(file.read_text(encoding="utf-8")))]
        found = [runs for runs in found if any(anchor in norm(r) for r in runs)]
    else:  # a template: the quoted strings of the line that holds the anchor
        lines = [line for line in file.read_text(encoding="utf-8").splitlines() if anchor in line]
        found = [re.findall(r'"([^"]*)"', line) for line in lines]
    assert found, f"key message {anchor!r} is no longer in {source}: update docs/troubleshooting.md and KEYS"
    runs = [norm(r) for r in found[0]]
    runs = [r.strip(" ;,:'\"") for r in runs]
    return [r for r in runs if len(r) >= MIN_KEY_RUN]


# --------------------------------------------------------------------------- reading the doc


class Row(t.NamedTuple):
    line: int
    area: str
    patterns: list[str]
    sources: list[str]


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


@functools.cache
def doc_rows() -> tuple[Row, ...]:
    rows: list[Row] = []
    area = ""
    header: list[str] = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("### "):
            area, header = line[4:].strip(), []
            continue
        if not line.startswith("|"):
            header = [] if not line.strip() else header
            continue
        cells = _cells(line)
        if not header:
            header = [c.lower() for c in cells]
            continue
        if set(line.replace("|", "").strip()) <= set("-: "):
            continue
        if "message" not in header or "source" not in header:
            continue
        message = cells[header.index("message")]
        source = cells[header.index("source")]
        patterns = re.findall(r"`([^`]+)`", message)
        sources = re.findall(r"[A-Za-z0-9_./-]+\.[a-z]+(?::[A-Za-z_][A-Za-z0-9_]*)?", source.replace("`", ""))
        rows.append(Row(number, area, patterns, sources))
    return tuple(rows)


def fixed_parts(pattern: str) -> list[str]:
    parts = []
    for chunk in PLACEHOLDER.split(pattern):
        for part in chunk.split(ELISION):
            part = norm(part)
            if part.strip():
                parts.append(part)
    return parts


def cover(part: str, corpus: str) -> list[str] | str:
    """Split ``part`` into the fewest pieces found in ``corpus``; a string marks where it cannot be covered.

    A piece must be long (MIN_PIECE+ characters), punctuation only, or one whole run of a literal (the text
    between two interpolated values, such as `` (HTTP `` in ``f" (HTTP {status})"``): short pieces of other words
    would let a reworded message pass.
    """
    if part in corpus:
        return [part]
    runs = {r.strip() for r in corpus.split(HOLE)}

    def longest(i: int) -> int:  # the longest prefix of part[i:] in corpus (every prefix of a match matches too)
        lo, hi = 0, len(part) - i
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if part[i : i + mid] in corpus:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def acceptable(piece: str) -> bool:
        core = piece.strip()
        return len(core) >= MIN_PIECE or not any(c.isalnum() for c in core) or core in runs

    best: list[list[str] | None] = [None] * (len(part) + 1)  # fewest pieces that cover part[:i]
    best[0] = []
    reached = 0
    for i in range(len(part)):
        if best[i] is None:
            continue
        for k in range(longest(i), 0, -1):
            piece = part[i : i + k]
            if acceptable(piece) and (best[i + k] is None or len(best[i + k]) > len(best[i]) + 1):
                best[i + k] = best[i] + [piece]
                reached = max(reached, i + k)
    if best[len(part)] is None:
        return f"{part[:reached]}[HERE>]{part[reached:]}"
    return best[len(part)]


# --------------------------------------------------------------------------- key messages (code -> doc)

# (source, anchor): the anchor picks one message in the source; its fixed runs must all be in the doc.
KEYS = [
    # bounds: stalls, deadlines, breakers
    ("plugins/module_utils/bounds.py:read_body", "hangs in the middle of a transfer"),
    ("plugins/module_utils/bounds.py:Breaker", "consecutive"),
    ("plugins/filter/test_gate.py:test_skip_reason", "found the server stalling"),
    # reaching the server
    ("plugins/module_utils/http.py:describe_error", "the host is not answering"),
    ("plugins/module_utils/http.py:describe_error", "nothing listens there"),
    ("plugins/module_utils/http.py:describe_error", "does not resolve (DNS)"),
    ("plugins/module_utils/http.py:describe_error", "the server is hung or overloaded"),
    ("plugins/module_utils/http.py:http_status_hint", "proxy-body-size"),
    ("plugins/modules/http_check.py:_ok", "not a PyPI index page"),
    # TLS
    ("plugins/module_utils/http.py:describe_error", "self-signed or from an unknown CA"),
    ("plugins/module_utils/http.py:describe_error", "has expired"),
    ("plugins/module_utils/http.py:warn_insecure", "NOT verified"),
    ("plugins/module_utils/http.py:describe_error", "does not speak TLS on that port"),
    ("plugins/module_utils/pip_runner.py:explain_pip_failure", "which pip gets as --cert"),
    ("plugins/module_utils/s3.py:_describe", "does not speak TLS there"),
    # credentials
    ("plugins/module_utils/credentials.py:prove", "so it does not authenticate"),
    ("plugins/module_utils/credentials.py:choose_probe", "authenticates nothing"),
    ("plugins/module_utils/credentials.py:check_password", "random letters and digits generated"),
    ("plugins/module_utils/credentials.py:atomic_write", "does not change on this file system"),
    # upload
    ("plugins/module_utils/upload.py:HINTS", "already on the index"),
    ("plugins/module_utils/upload.py:HINTS", "body-size limit refused the upload"),
    ("plugins/module_utils/upload.py:check_files", "build it first"),
    ("plugins/module_utils/ladder.py:refusal_message", "accepted up to"),
    ("plugins/module_utils/ladder.py:KNOWN_LIMITS", "client_max_body_size defaults to 1m"),
    ("plugins/module_utils/probe.py:validate_version", "not a PEP 440 version"),
    # install
    ("plugins/module_utils/pip_runner.py:explain_pip_failure", "behind the index's back"),
    ("plugins/module_utils/pip_runner.py:explain_pip_failure", "pip looked only there, wheels only"),
    ("plugins/module_utils/install.py:diagnose_index", "and none were given"),
    ("plugins/module_utils/provenance.py:judge", "a file URL the index under test never advertised"),
    ("plugins/module_utils/provenance.py:_page_problem", "read the page from another index"),
    ("plugins/module_utils/install.py:import_check", "Set import_name if the importable package"),
    # index / listing
    ("plugins/module_utils/simple_index.py:fetch_project", "check the project name, that it was uploaded"),
    ("plugins/module_utils/simple_index.py:_check_meta", "no meta.api-version"),
    ("plugins/module_utils/cooldown.py:judge", "the index serves no upload-time (PEP 700)"),
    ("plugins/module_utils/conformance.py:check_pep700", "before this run started"),
    ("plugins/modules/index_list.py:run", "do not match the hash in their index link"),
    ("plugins/modules/index_list.py:_expect_message", "The server lost, renamed or altered"),
    ("plugins/modules/load_test.py:run", "operations failed"),
    # storage & S3
    ("plugins/module_utils/storage.py:mismatch_message", "The server lost or altered uploaded files"),
    ("plugins/modules/storage_inventory.py:run", "uploads would fail"),
    ("plugins/module_utils/s3.py:_client_error", "create it or fix pypi_s3_bucket"),
    ("plugins/module_utils/s3.py:_client_error", "SignatureDoesNotMatch"),
    ("plugins/module_utils/s3.py:_client_error", "lack s3:ListBucket"),
    ("plugins/module_utils/local_s3.py:fuse_problem", "no /dev/fuse"),
    # local target
    ("plugins/module_utils/local_server.py:start", "is already in use by another process"),
    ("plugins/module_utils/local_server.py:_spawn", "did not become healthy"),
    ("plugins/module_utils/local_server.py:validate_spec", "pypiserver would refuse every upload"),
    ("plugins/module_utils/replicas.py:stale_message", "uploaded through the front is"),
    ("plugins/module_utils/front.py:start", "round-robin front needs it"),
    ("roles/functional_tests/tasks/persistence.yml", "did not produce a new server instance"),
    # dependency confusion and resolution
    ("plugins/module_utils/fallback.py:verdict", "dependency confusion"),
    ("plugins/module_utils/resolution.py:judge", "which does not ask for it"),
    # kubernetes
    ("plugins/module_utils/k8s_wait.py:api_error", "grant it to the service account/user"),
    ("plugins/module_utils/k8s_wait.py:wait_for_new_ready", "waiting for"),
    ("plugins/module_utils/k8s_wait.py:next_step", "cannot be pulled"),
    ("plugins/module_utils/k8s_wait.py:diagnose", "Multi-Attach"),
    ("plugins/module_utils/port_forward.py:_GENERIC_HINT", "RBAC (pods/portforward)"),
    ("plugins/module_utils/port_forward.py:_HINTS", "no running pod behind"),
    ("plugins/module_utils/pod_exec.py:pod_inventory", "sha256sum is not installed"),
    ("charts/pypiserver/templates/_helpers.tpl", "needs persistence.accessMode=ReadWriteMany"),
    # the local cluster
    ("scripts/cluster/cluster.py:up", "another Kubernetes node runs on this machine"),
    ("plugins/filter/helm_test.py:_why", "check the test Role's verbs"),
    # runbooks and probe removal
    ("playbooks/smoke.yml", "smoke.yml only reads"),
    ("roles/deploy/tasks/rotate/check_current.yml", "No current password is known"),
    ("roles/functional_tests/tasks/probe_cleanup.yml", "nothing proves the run left it unchanged"),
    ("plugins/module_utils/snapshot.py:verdict", "remove them with playbooks/cleanup_probes.yml"),
    ("plugins/module_utils/remove.py:post_remove", "guards remove_pkg like uploads"),
    ("plugins/module_utils/remove.py:remove_group", "did not happen"),
    # input validation
    ("roles/deploy/tasks/main.yml", "Unknown pypi_target"),
    ("roles/deploy/tasks/url/deploy.yml", "needs pypi_url"),
    ("plugins/module_utils/remove.py:check_name", "is not a valid project name"),
    ("ansible/plugins/action/validate_argument_spec.py", "Validation of arguments failed"),
    # report
    ("roles/report/tasks/main.yml", "a verifier that ran nothing proves nothing"),
    ("plugins/modules/test_report.py:run", "choose a writable pypi_report_dir"),
    ("extensions/molecule/playbooks/converge.yml", "target failed"),
]


def test_keys_cover_every_area():
    """At least 25 key messages, and at least one in each area of the doc (found by its longest fixed run)."""
    assert len(KEYS) >= 25
    text_by_area: dict[str, str] = {}
    for row in doc_rows():
        text_by_area[row.area] = text_by_area.get(row.area, "") + HOLE + HOLE.join(norm(p) for p in row.patterns)
    assert len(text_by_area) >= 10, sorted(text_by_area)
    covered = set()
    for source, anchor in KEYS:
        runs = key_runs(source, anchor)
        longest = max(runs, key=len, default=anchor)
        covered |= {area for area, text in text_by_area.items() if longest in text}
    assert covered == set(text_by_area), f"areas without a key message: {sorted(set(text_by_area) - covered)}"


@pytest.mark.parametrize(("source", "anchor"), KEYS, ids=[f"{s.split(':')[0].split('/')[-1]}:{a}" for s, a in KEYS])
def test_key_message_is_in_the_doc(source, anchor):
    runs = key_runs(source, anchor)
    assert runs, f"{source} {anchor!r}: no fixed run of {MIN_KEY_RUN}+ characters; choose another key message"
    doc = norm(DOC.read_text(encoding="utf-8").replace("\\|", "|"))
    missing = [r for r in runs if r not in doc]
    assert not missing, f"docs/troubleshooting.md lacks the current text of {source} ({anchor!r}): {missing}"


# --------------------------------------------------------------------------- the table (doc -> code)


def test_the_doc_has_tables():
    rows = doc_rows()
    assert len(rows) >= 100, len(rows)
    assert all(row.patterns and row.sources for row in rows), [r.line for r in rows if not (r.patterns and r.sources)]


@pytest.mark.parametrize("row", doc_rows(), ids=[f"line{r.line}" for r in doc_rows()])
def test_row_message_is_still_in_the_code(row):
    corpus = HOLE.join(source_text(s) for s in row.sources)
    parts = [p for pattern in row.patterns for p in fixed_parts(pattern)]
    assert sum(len(p.strip()) for p in parts) >= MIN_DISTINCT, f"line {row.line}: too little fixed text to check"
    broken = {}
    for part in parts:
        got = cover(part, corpus)
        if isinstance(got, str):
            broken[part] = got
    assert not broken, (
        f"docs/troubleshooting.md line {row.line}: text not found in {row.sources} "
        f"(reworded? refresh the row): {list(broken.values())}"
    )


def _prints_messages(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return bool(re.search(r"fail_json\(|\.warn\(|raise \w*Error\(\s*f?\"|return \w*Error\(\s*f?\"", text))
    return bool(re.search(r"fail_msg:|ansible\.builtin\.fail:|pypi_test_skip: \S", text))


def test_every_file_that_prints_a_message_is_a_source():
    named = {s.partition(":")[0] for row in doc_rows() for s in row.sources}
    files = [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "roles").glob("*/tasks/**/*.yml")]
    files += [*(ROOT / "playbooks").glob("*.yml"), ROOT / "verify.yml", *(ROOT / "extensions").rglob("*.yml")]
    printing = {str(f.relative_to(ROOT)) for f in files if _prints_messages(f)}
    missing = sorted(printing - named)
    assert not missing, f"files whose messages have no row in docs/troubleshooting.md: {missing}"


def test_cover_rejects_reworded_text():
    """The matcher must be able to fail: a reworded hint is not covered by short pieces of other text."""
    corpus = HOLE.join(
        [
            "Upload of \x00: expected \x00, got \x00\x00; \x00.\x00",
            " (HTTP \x00)",
            "the file is already on the index and the server does not overwrite; bump the version",
        ]
    )
    assert isinstance(
        cover("); the file is already on the index and the server does not overwrite; bump", corpus), list
    )
    assert isinstance(cover("the file is already on the index and the server never overwrites", corpus), str)
    assert isinstance(cover("; raise the version", corpus), str)
