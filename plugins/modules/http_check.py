#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_check
short_description: Check that a URL of the index answers as expected, with clear errors
version_added: "0.1.0"
description:
  - One GET with connect and read timeouts, optionally retried with bounded backoff until a deadline.
  - Checks the status and, optionally, that the body is HTML; reports the links found and the elapsed time.
  - Transport and TLS failures become one sentence naming the cause and the next step.
notes:
  - The progress this module writes to O(progress_file) is the attempt number and the last error while the module
    waits (O(wait)).
author:
  - pypi_ops contributors (@pypi-ops)
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
  - pypi_ops.pypiserver.progress
options:
  url:
    description: URL to fetch.
    type: str
    required: true
  status:
    description: Acceptable status codes.
    type: list
    elements: int
    default: [200]
  expect_html:
    description: Require an HTML content type.
    type: bool
    default: false
  skip_non_html:
    description:
      - With O(expect_html), an acceptable answer (O(status)) that is not HTML, for example JSON from an API-only
        server without a web page, does not fail the task. The result then has RV(html=false) and a
        RV(skip_reason) naming the content type, and no link of O(follow_links) is followed.
      - A status outside O(status) still fails, and so does a missing or broken link on an HTML page.
    type: bool
    default: false
    version_added: "0.5.0"
  follow_links:
    description:
      - Path endings the page must link to, for example V(/simple/) and V(/packages/) on a pypiserver's root page.
      - For each, the first link whose absolute path ends with it is requested (GET, same credentials, redirects
        followed) and must answer 2xx. A missing link or another answer fails the task, naming it.
    type: list
    elements: str
    default: []
    version_added: "0.3.0"
  wait:
    description: Seconds to keep retrying (backoff 0.2 s to 2 s) until the status is acceptable; V(0) tries once.
    type: float
    default: 0
  follow_redirects:
    description: Follow redirects (at most 10).
    type: bool
    default: true
  method:
    description: HTTP method. V(POST) sends O(form) as an URL-encoded body.
    type: str
    choices: [GET, POST]
    default: GET
    version_added: "0.2.0"
  form:
    description:
      - "Form fields of a V(POST), for example C({\":action\": \"verify\"}), which pypiserver authenticates and ignores."
    type: dict
    default: {}
    version_added: "0.2.0"
  compare_anonymous:
    description:
      - When a password is given and the answer is acceptable, send the same request once more without credentials.
      - If that is accepted too, the server did not need the credentials; the module warns, and returns
        RV(credentials_needed=false). Otherwise RV(credentials_needed=true). Nothing is compared without a password.
    type: bool
    default: false
    version_added: "0.2.0"
  progress_file:
    version_added: "0.2.0"
"""

EXAMPLES = r"""
- name: The server answers on its health endpoint
  pypi_ops.pypiserver.http_check:
    url: http://127.0.0.1:8080/health
    wait: 30

- name: Do uploads need the credentials? (pypiserver authenticates and ignores :action=verify)
  pypi_ops.pypiserver.http_check:
    url: http://127.0.0.1:8080/
    method: POST
    form: {":action": "verify"}
    username: ci
    password: "{{ pypi_password }}"
    compare_anonymous: true
"""

RETURN = r"""
status:
  description: HTTP status of the last answer.
  returned: always
  type: int
content_type:
  description: Content-Type header.
  returned: success
  type: str
elapsed:
  description: Seconds for the successful request.
  returned: success
  type: float
html:
  description: Whether the answer's content type is HTML.
  returned: success
  type: bool
  version_added: "0.5.0"
skip_reason:
  description: Why there is nothing to check (the answer is not HTML), one sentence naming the content type.
  returned: success with O(skip_non_html=true) and an answer that is not HTML
  type: str
  version_added: "0.5.0"
links:
  description: Href targets of the anchors in an HTML body (at most 200).
  returned: success
  type: list
  elements: str
final_url:
  description: URL after redirects.
  returned: success
  type: str
attempts:
  description: Requests made.
  returned: always
  type: int
anonymous_status:
  description: HTTP status of the same request without credentials (V(-1) when it did not get an answer).
  returned: when O(compare_anonymous=true), a password is given and the answer was acceptable
  type: int
followed:
  description: For each of O(follow_links), the link found (C(url), null when none) and the C(status) it answered.
  returned: when O(follow_links) is not empty and the page answered as expected
  type: list
  elements: dict
  sample: [{"path": "/simple/", "url": "http://127.0.0.1:8080/simple/", "status": 200}]
credentials_needed:
  description: Whether the request without credentials was refused; V(false) comes with a warning.
  returned: when O(compare_anonymous=true), a password is given and the answer was acceptable
  type: bool
"""

import re
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import conformance as cf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import PROGRESS_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module

_HREF = re.compile(r"<a\s[^>]*href=[\"']([^\"']*)[\"']", re.I)


def _request(session: t.Any, p: dict[str, t.Any], opts: httputil.ClientOptions, **kwargs: t.Any) -> t.Any:
    if p["method"] == "POST":
        kwargs["data"] = p["form"]
    return session.request(p["method"], p["url"], timeout=opts.timeout, allow_redirects=p["follow_redirects"], **kwargs)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    session = httputil.make_session(opts, pool=1)
    deadline = time.monotonic() + p["wait"]
    delay, attempts, last_msg, status = 0.2, 0, "", None
    prog = progress.Progress(p["progress_file"] if p["wait"] > 0 else None, "wait", unit="attempt")
    while True:
        attempts += 1
        start = time.monotonic()
        try:
            resp = _request(session, p, opts)
            status = resp.status_code
            if status in p["status"]:
                result = _ok(module, resp, time.monotonic() - start, attempts)
                if p["follow_links"] and "skip_reason" not in result:
                    result["followed"] = _follow_links(module, session, resp, opts, result)
                if p["compare_anonymous"] and opts.has_credentials:
                    result.update(_compare_anonymous(module, session, p, opts))
                return result
            last_msg = (
                f"{httputil.redact_url(p['url'])} answered HTTP {status}, expected {p['status']}: "
                f"{httputil.http_status_hint(status)}."
            )
        except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
            last_msg = httputil.describe_error(exc, p["url"], opts)
        if time.monotonic() + delay > deadline:
            if p["wait"]:
                last_msg += f" (gave up after {attempts} attempt(s) over {p['wait']:g}s)"
            module.fail_json(msg=last_msg, status=status or -1, attempts=attempts)
        prog.update(attempts, detail=f"up to {p['wait']:g} s; {last_msg}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _compare_anonymous(
    module: AnsibleModule, session: t.Any, p: dict[str, t.Any], opts: httputil.ClientOptions
) -> dict[str, t.Any]:
    """The same request without credentials: accepted too means the server did not need them (a warning)."""
    try:
        anonymous = _request(session, p, opts, auth=_NoAuth()).status_code
    except Exception:  # noqa: BLE001 - no answer proves nothing either way
        return {"anonymous_status": -1, "credentials_needed": True}
    needed = anonymous not in p["status"]
    if not needed:
        module.warn(
            f"Credentials were given, but {httputil.redact_url(p['url'])} accepted the {p['method']} without any "
            f"(HTTP {anonymous}): the server does not authenticate it. Enable authentication on the server if it "
            "should (pypiserver: -a update -P htpasswd), or drop the credentials."
        )
    return {"anonymous_status": anonymous, "credentials_needed": needed}


def _follow_links(
    module: AnsibleModule, session: t.Any, resp: t.Any, opts: httputil.ClientOptions, result: dict[str, t.Any]
) -> list[dict[str, t.Any]]:
    """GET the first link ending in each of ``follow_links``; fail naming the links missing or not answering 2xx."""
    found = cf.web_links(resp.text, resp.url, module.params["follow_links"])
    followed, bad = [], []
    for path, url in found.items():
        status: int | None = None
        if url is None:
            bad.append(f"no link to {path}")
        else:
            try:
                with session.get(url, timeout=opts.timeout, stream=True) as answer:
                    status = answer.status_code
            except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
                bad.append(f"{httputil.redact_url(url)}: {httputil.describe_error(exc, url, opts)}")
            else:
                if not 200 <= status < 300:
                    bad.append(
                        f"{httputil.redact_url(url)} answered HTTP {status} ({httputil.http_status_hint(status)})"
                    )
        followed.append({"path": path, "url": httputil.redact_url(url) if url else None, "status": status})
    if bad:
        module.fail_json(
            msg=f"The page {httputil.redact_url(resp.url)} does not lead where it should: {'; '.join(bad)}. Check the "
            "server's root page and the URL it is served under (a proxy path prefix?).",
            followed=followed,
            **result,
        )
    return followed


class _NoAuth:
    """A requests auth hook that strips the Authorization header (the session's credentials) off one request."""

    def __call__(self, request: t.Any) -> t.Any:
        request.headers.pop("Authorization", None)
        return request


def _ok(module: AnsibleModule, resp: t.Any, elapsed: float, attempts: int) -> dict[str, t.Any]:
    ctype = resp.headers.get("Content-Type", "")
    result = {
        "changed": False,
        "status": resp.status_code,
        "content_type": ctype,
        "elapsed": round(elapsed, 4),
        "final_url": httputil.redact_url(resp.url),
        "attempts": attempts,
        "links": [],
        "html": "html" in ctype.lower(),
    }
    if result["html"]:
        result["links"] = _HREF.findall(resp.text)[:200]
    elif module.params["expect_html"] and module.params["skip_non_html"]:
        result["skip_reason"] = (
            f"{httputil.redact_url(resp.url)} answered {resp.status_code} with Content-Type {ctype or 'none'!r}, not "
            "HTML: the server has no web page (an API-only root), so there is no page to check."
        )
    elif module.params["expect_html"]:
        module.fail_json(
            msg=f"{httputil.redact_url(resp.url)} answered {resp.status_code} with Content-Type {ctype or 'none'!r}, not HTML; "
            "this is not a PyPI index page. Check the URL (simple index usually at /simple/).",
            **result,
        )
    return result


def main() -> None:
    argument_spec = dict(
        url=dict(type="str", required=True),
        status=dict(type="list", elements="int", default=[200]),
        expect_html=dict(type="bool", default=False),
        skip_non_html=dict(type="bool", default=False),
        wait=dict(type="float", default=0.0),
        follow_redirects=dict(type="bool", default=True),
        method=dict(type="str", default="GET", choices=["GET", "POST"]),
        form=dict(type="dict", default={}),
        compare_anonymous=dict(type="bool", default=False),
        follow_links=dict(type="list", elements="str", default=[]),
        **PROGRESS_ARGS,
        **httputil.CLIENT_ARGS,
    )
    run_module(
        "http_check",
        argument_spec,
        run,
        libraries=[Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR)],
        doing=lambda p: f"while checking {httputil.redact_url(p['url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
