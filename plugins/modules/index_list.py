# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: index_list
short_description: List the projects, or one project's files, of a simple repository index
version_added: "0.1.0"
description:
  - Reads a PEP 503 (HTML) or PEP 691 (JSON) simple index such as pypiserver's C(/simple/), the way pip does.
  - Negotiates the format (JSON preferred, HTML accepted) and reports which one the server answered.
  - Without O(project), returns the normalized project names; with it, returns that project's files with versions,
    absolute URLs and the hash from each link's C(#sha256=...) fragment.
  - A project name that is not normalized (C(Foo.Bar)) is requested as given and the server's redirect is followed.
  - With O(verify_hashes), every listed file is downloaded (streamed, never held in memory) and its digest checked.
  - Every failure (refused connection, DNS, TLS, 401/403/404/5xx, a page that is not an index) is one sentence that
    names the cause and the next step.
  - An HTML index root is told apart from a page that answers every path (a web server's default page, a login page)
    by requesting the page of a project that cannot exist too (redirects not followed); a 200 there fails the task.
author:
  - pypi_ops contributors (@pypi-ops)
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
  - pypi_ops.pypiserver.progress
options:
  url:
    description:
      - URL of the simple index root, for example C(http://127.0.0.1:8080/simple/). A missing trailing slash is added.
    type: str
    required: true
  project:
    description:
      - List this project's files instead of the index's projects. Any spelling; it is normalized (PEP 503).
    type: str
  verify_hashes:
    description:
      - Download every file of O(project) and compare its digest with the hash in its link.
      - Fails, with the per-file results in RV(downloads), when any file does not match. Needs O(project).
      - A file whose link carries no hash is downloaded and reported with C(match=null) and a warning.
    type: bool
    default: false
  require_links:
    description:
      - Fail when the page lists nothing. An empty index is legitimate, so this is off by default; turn it on to
        catch a URL that answers 200 with a page that is not an index.
    type: bool
    default: false
  expect:
    description:
      - Files (dicts with C(filename) and optionally C(sha256), e.g. M(pypi_ops.pypiserver.package_build) records)
        that must be listed on the O(project) page with exactly that sha256 in their link.
      - A missing file or a different advertised hash fails the task, naming the files.
    type: list
    elements: dict
    default: []
  timeout:
    description:
      - Seconds allowed for each O(verify_hashes) download in all. A download that receives no byte for
        O(read_timeout) fails before that, as stalled, naming how much of the file arrived.
    type: float
    default: 300
    version_added: 0.4.0
  progress_file:
    version_added: "0.2.0"
notes:
  - Requests are sent with C(Accept) V(application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,
    text/html;q=0.01).
  - No proxy settings and no C(~/.netrc) are read from the environment; the module talks to O(url) only.
  - The progress this module writes to O(progress_file) is which file is being downloaded and the bytes received of
    its size, during O(verify_hashes) downloads.
requirements:
  - requests
  - packaging
seealso:
  - module: pypi_ops.pypiserver.local_server
  - name: PEP 503 - Simple Repository API
    description: The HTML index format.
    link: https://peps.python.org/pep-0503/
  - name: PEP 691 - JSON-based Simple API
    description: The JSON index format.
    link: https://peps.python.org/pep-0691/
"""

EXAMPLES = r"""
- name: List the projects on the local pypiserver
  pypi_ops.pypiserver.index_list:
    url: http://127.0.0.1:8080/simple/
  register: index

- name: List one project's files and check that every file downloads with the advertised sha256
  pypi_ops.pypiserver.index_list:
    url: "{{ pypi_url }}/simple/"
    project: Foo.Bar
    verify_hashes: true
    username: ci
    password: "{{ vault_pypi_password }}"
  register: foo

- name: Fail if the URL answers 200 but lists nothing
  pypi_ops.pypiserver.index_list:
    url: https://pypi.example.internal/simple/
    ca_path: /etc/pki/private-ca.pem
    require_links: true
"""

RETURN = r"""
missing:
  description: O(expect) files not listed.
  returned: when O(expect) is given
  type: list
  elements: str
differing:
  description: O(expect) files listed with another sha256.
  returned: when O(expect) is given
  type: list
  elements: str
format:
  description: Format the server answered, from its Content-Type.
  returned: success
  type: str
  choices: [json, html]
  sample: html
url:
  description: URL requested (without any credentials).
  returned: success
  type: str
  sample: http://127.0.0.1:8080/simple/Foo.Bar/
final_url:
  description: URL the page was served from after redirects (without any credentials).
  returned: success
  type: str
  sample: http://127.0.0.1:8080/simple/foo-bar/
content_type:
  description: The Content-Type header of the answer.
  returned: success
  type: str
  sample: text/html; charset=UTF-8
links_found:
  description: Number of links (HTML) or entries (JSON) on the page.
  returned: success
  type: int
  sample: 2
missing_project_status:
  description: Status of the page of a project that cannot exist (V(404) on an index; V(null) without an answer).
  returned: when O(project) is not given and the root answered HTML
  type: int
  sample: 404
projects:
  description: Normalized project names, sorted.
  returned: when O(project) is not given
  type: list
  elements: str
  sample: [foo-bar, other]
project:
  description: The normalized name of O(project).
  returned: when O(project) is given
  type: str
  sample: foo-bar
files:
  description: The project's files, in page order.
  returned: when O(project) is given
  type: list
  elements: dict
  contains:
    filename: {description: File name., type: str, returned: always, sample: foo_bar-1.0.0-py3-none-any.whl}
    version: {description: Normalized version; null when the name cannot be parsed., type: str, returned: always}
    kind: {description: "V(wheel), V(sdist) or V(other).", type: str, returned: always, sample: wheel}
    url: {description: Absolute download URL without the hash fragment., type: str, returned: always}
    hash_algo: {description: Hash algorithm of the link (null without one)., type: str, returned: always}
    hash_digest: {description: Hex digest of the link (null without one)., type: str, returned: always}
    hashes: {description: "Every hash the index gave, by algorithm.", type: dict, returned: always}
    requires_python: {description: "C(data-requires-python), unescaped (for example C(>=3.8)).", type: str, returned: always}
    yanked: {description: Whether the file is yanked (PEP 592)., type: bool, returned: always}
    yanked_reason: {description: "The yank reason, if any.", type: str, returned: always}
    core_metadata: {description: Whether the index serves the file's metadata (PEP 658)., type: bool, returned: always}
    core_metadata_hashes: {description: Hashes of that metadata file., type: dict, returned: always}
versions:
  description: Unique versions of the project's files, oldest first (PEP 440 order).
  returned: when O(project) is given
  type: list
  elements: str
  sample: ["0.9", "1.0.0"]
downloads:
  description: One entry per downloaded file.
  returned: when O(verify_hashes) is true and the files were listed
  type: list
  elements: dict
  contains:
    filename: {description: File name., type: str, returned: always}
    url: {description: URL downloaded., type: str, returned: always}
    sha256: {description: sha256 of the downloaded bytes., type: str, returned: always}
    size: {description: Bytes downloaded., type: int, returned: always}
    hash_algo: {description: Algorithm compared (the link's)., type: str, returned: always}
    expected: {description: Digest from the link., type: str, returned: always}
    actual: {description: Digest of the downloaded bytes in that algorithm., type: str, returned: always}
    match: {description: "Whether they are equal; null when the link has no hash.", type: bool, returned: always}
mismatches:
  description: File names whose download does not match the link's hash.
  returned: when O(verify_hashes) is true and the files were listed
  type: list
  elements: str
"""

import typing as t
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import PROGRESS_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    if p["verify_hashes"] and not p["project"]:
        module.fail_json(
            msg="verify_hashes needs project: give the project whose files should be downloaded and checked."
        )
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    session = httputil.make_session(opts)
    try:
        if p["project"]:
            listing = si.fetch_project(session, p["url"], p["project"], opts)
            what = f"project {listing['project']!r}"
        else:
            listing = si.fetch_projects(session, p["url"], opts)
            what = "the index"
        result: dict[str, t.Any] = {"changed": False, **listing}
        result.pop("status", None)
        result.pop("redirected", None)

        if urlsplit(listing["final_url"]).netloc != urlsplit(listing["url"]).netloc:
            module.warn(
                f"{listing['url']} redirected to another host ({listing['final_url']}); "
                "the listing came from there (a fallback index?), and credentials are not sent across hosts."
            )
        if not p["project"] and listing["format"] == "html":
            missing_url, result["missing_project_status"] = si.missing_project_status(
                session, listing["final_url"], opts
            )
            if result["missing_project_status"] == 200:
                links = "with no links" if not listing["links_found"] else f"with {listing['links_found']} link(s)"
                module.fail_json(
                    msg=f"{listing['final_url']} is not a PyPI simple index: it answers {listing['content_type'] or 'a page'} "
                    f"{links}, and 200 for {missing_url}, a project that cannot exist, too: a page that answers every "
                    "path (a web server's default page, a login page or a single-page app?); check the URL "
                    "(pypi_url / pypi_simple_url; the simple index usually ends in /simple/).",
                    **result,
                )
        if p["require_links"] and not listing["links_found"]:
            module.fail_json(
                msg=f"{listing['final_url']} answered {listing['content_type'] or 'no Content-Type'} with no links for "
                f"{what}; check that the URL is the simple index and that packages were uploaded "
                "(or set require_links: false when an empty index is expected).",
                **result,
            )

        if p["expect"]:
            if not p["project"]:
                module.fail_json(msg="expect needs project: the expected files belong to one project's page.")
            result["missing"], result["differing"] = _check_expected(listing["files"], p["expect"])
            if result["missing"] or result["differing"]:
                module.fail_json(msg=_expect_message(what, listing["final_url"], result), **result)

        if p["verify_hashes"]:
            prog = progress.Progress(p["progress_file"], "download", unit="bytes")
            downloads = si.verify_files(session, listing["files"], opts, progress=prog)
            result["downloads"] = downloads
            result["mismatches"] = [d["filename"] for d in downloads if d["match"] is False]
            unhashed = [d["filename"] for d in downloads if d["match"] is None]
            if unhashed:
                module.warn(f"No hash in the index for {', '.join(unhashed)}: downloaded, but nothing to compare with.")
            if result["mismatches"]:
                module.fail_json(
                    msg=f"{len(result['mismatches'])} file(s) of {what} do not match the hash in their index link: "
                    f"{', '.join(result['mismatches'])}; the stored file or the index's hash is wrong, "
                    "re-upload the file or check the server's package directory.",
                    **result,
                )
            # whatever hash the index advertises (md5, none...), the bytes served must be the uploaded ones
            wanted = {e.get("filename"): e.get("sha256") for e in p["expect"] if e.get("sha256")}
            altered = [
                d["filename"] for d in downloads if d["filename"] in wanted and d["sha256"] != wanted[d["filename"]]
            ]
            if altered:
                result["differing"] = sorted(set(result.get("differing", [])) | set(altered))
                module.fail_json(
                    msg=f"{what} serves {', '.join(altered)} with a sha256 other than the uploaded file's; the stored "
                    "file was altered or replaced after upload (check the package directory and its storage).",
                    **result,
                )
    finally:
        session.close()
    return result


def _check_expected(files: list[dict[str, t.Any]], expect: list[dict[str, t.Any]]) -> tuple[list[str], list[str]]:
    """Expected files absent from the page, and those whose advertised sha256 differs from the expected one."""
    listed = {f["filename"]: f for f in files}
    missing, differing = [], []
    for want in expect:
        name = want.get("filename") or ""
        have = listed.get(name)
        if have is None:
            missing.append(name)
        elif want.get("sha256") and have.get("hash_algo") == "sha256" and have.get("hash_digest") != want["sha256"]:
            differing.append(name)
    return missing, differing


def _expect_message(what: str, url: str, result: dict[str, t.Any]) -> str:
    parts = []
    if result["missing"]:
        parts.append(f"not listed: {', '.join(result['missing'])}")
    if result["differing"]:
        parts.append(f"listed with a sha256 other than the uploaded file's: {', '.join(result['differing'])}")
    return (
        f"{what} at {url}: " + "; ".join(parts) + ". The server lost, renamed or altered uploaded files; "
        "check its package directory and log."
    )


def main() -> None:
    argument_spec: dict[str, dict[str, t.Any]] = {
        "url": {"type": "str", "required": True},
        "project": {"type": "str"},
        "verify_hashes": {"type": "bool", "default": False},
        "require_links": {"type": "bool", "default": False},
        "expect": {"type": "list", "elements": "dict", "default": []},
        **PROGRESS_ARGS,
        "timeout": {"type": "float", "default": 300.0},
        **httputil.CLIENT_ARGS,
    }
    run_module(
        "index_list",
        argument_spec,
        run,
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", si.HAS_PACKAGING, si.PACKAGING_IMPORT_ERROR),
        ],
        errors={si.IndexReadError: ("status",)},
        doing=lambda p: f"while reading {httputil.redact_url(p['url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
