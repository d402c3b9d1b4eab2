"""credentials module_utils and the credentials_check module, against real pypiserver processes."""

from __future__ import annotations

import os
import threading

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import credentials as cred
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.modules import credentials_check

NEW = "Brand-new-Passw0rd-77"


# ---------------------------------------------------------------- files and passwords


def test_atomic_write_moves_the_mtime_on_where_the_file_system_would_not(tmp_path, monkeypatch):
    path = tmp_path / "htpasswd"
    path.write_bytes(b"old\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    real_replace = os.replace

    def coarse_replace(src, dst):  # a file system that gives the new file the same (whole-second) mtime
        real_replace(src, dst)
        os.utime(dst, (1_700_000_000, 1_700_000_000))

    monkeypatch.setattr(cred.os, "replace", coarse_replace)
    cred.atomic_write(str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    assert os.path.getmtime(path) == 1_700_000_001
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["htpasswd"]  # no temp file left behind


def test_atomic_write_fails_in_one_sentence_when_the_mtime_cannot_change(tmp_path, monkeypatch):
    path = tmp_path / "htpasswd"
    path.write_bytes(b"old\n")
    frozen = os.path.getmtime(path)
    monkeypatch.setattr(cred.os.path, "getmtime", lambda _p: frozen)
    with pytest.raises(cred.CredentialsError) as err:
        cred.atomic_write(str(path), b"new\n")
    assert "does not change on this file system, so pypiserver would not re-read it" in err.value.msg


def test_render_htpasswd_keeps_matching_entries_and_drops_other_users():
    content, changed = cred.render_htpasswd({"ci": "first-password-1"})
    assert changed and cred.htpasswd_accepts(content, "ci", "first-password-1")
    same, changed = cred.render_htpasswd({"ci": "first-password-1"}, content)
    assert not changed and same == content
    extra = content + cred.render_htpasswd({"other": "x-password-123"})[0]
    cleaned, changed = cred.render_htpasswd({"ci": "first-password-1"}, extra)
    assert changed and cred.htpasswd_users(cleaned) == ["ci"]
    new, changed = cred.render_htpasswd({"ci": NEW}, content)
    assert (
        changed and cred.htpasswd_accepts(new, "ci", NEW) and not cred.htpasswd_accepts(new, "ci", "first-password-1")
    )
    with pytest.raises(cred.CredentialsError, match="without ':'"):
        cred.render_htpasswd({"a:b": NEW})


def test_password_rules():
    assert cred.password_problem("24LettersAndDigits000000") is None
    assert "fewer than 12" in cred.password_problem("short")
    assert "whitespace" in cred.password_problem("trailing-space-pw ")
    assert "control character" in cred.password_problem("tab\tinside-password")
    assert "salt=" in cred.password_problem("abc salt=defghijkl")
    with pytest.raises(cred.CredentialsError) as err:
        cred.check_password("short")
    assert err.value.msg.startswith("The new password has 5 characters") and "short" not in err.value.msg


def test_credentials_file_round_trip_in_the_password_lookup_format(tmp_path):
    path = tmp_path / "credentials"
    assert cred.read_credentials_file(str(path)) is None
    cred.atomic_write(str(path), cred.credentials_file_content(NEW))
    assert path.read_text() == NEW + "\n"
    assert cred.read_credentials_file(str(path)) == NEW
    path.write_text("pw-with-salt-1234 salt=abcdefgh\n")
    assert cred.read_credentials_file(str(path)) == "pw-with-salt-1234"


def test_secret_patch_touches_plaintext_keys_only_where_they_exist():
    ht = cred.b64(cred.render_htpasswd({"ci": "old-password-123"})[0])
    patch, keys = cred.secret_patch({".htpasswd": ht}, "ci", NEW)
    assert keys == [".htpasswd"] and cred.htpasswd_accepts(cred.unb64(patch[".htpasswd"]), "ci", NEW)
    data = {".htpasswd": ht, "username": cred.b64("ci"), "password": cred.b64("old-password-123")}
    patch, keys = cred.secret_patch(data, "ci", NEW)
    assert keys == [".htpasswd", "password"] and cred.unb64(patch["password"]) == NEW.encode()
    done = {".htpasswd": patch[".htpasswd"], "username": cred.b64("ci"), "password": patch["password"]}
    assert cred.secret_patch(done, "ci", NEW) == ({}, [])


# ---------------------------------------------------------------- credentials_check against real servers


def _args(server, **extra):
    return {"url": server.url, "username": server.username, **extra}


def test_accepted_and_refused(auth_pypiserver, run_module):
    ok = run_module(credentials_check, _args(auth_pypiserver, password=auth_pypiserver.password))
    assert not ok.failed, ok
    assert (ok["accepted_status"], ok["anonymous_status"], ok["refused_status"]) == (200, 401, None)
    assert ok["probe"].startswith("POST / :action=verify") and ok["changed"] is False
    both = run_module(
        credentials_check,
        _args(auth_pypiserver, password=auth_pypiserver.password, refused_password="some-other-password"),
    )
    assert (both["accepted_status"], both["refused_status"]) == (200, 403)
    only_refused = run_module(credentials_check, _args(auth_pypiserver, refused_password="some-other-password"))
    assert only_refused["refused_status"] == 403 and only_refused["accepted_status"] is None


def test_wrong_password_fails_after_the_wait_in_one_sentence(auth_pypiserver, run_module):
    res = run_module(
        credentials_check, _args(auth_pypiserver, password="not-the-password", wait=0.5, hint="check the file.")
    )
    assert res.failed
    assert "the credentials that must work are refused (HTTP 403) for user 'ci-user'" in res["msg"]
    assert res["msg"].endswith("; check the file.") and "not-the-password" not in res["msg"]


def test_a_password_that_still_works_is_not_refused(auth_pypiserver, run_module):
    res = run_module(credentials_check, _args(auth_pypiserver, refused_password=auth_pypiserver.password))
    assert res.failed and "the credentials that must be refused still get HTTP 200" in res["msg"]


def test_a_server_that_does_not_authenticate_proves_nothing(pypiserver, run_module):
    res = run_module(credentials_check, {"url": pypiserver.url, "username": "u", "password": "whatever-password"})
    assert res.failed
    assert "without credentials instead of 401, so it does not authenticate 'update'" in res["msg"]


def test_same_password_twice_and_nothing_to_check(auth_pypiserver, run_module):
    same = run_module(
        credentials_check, _args(auth_pypiserver, password="pw-123456789", refused_password="pw-123456789")
    )
    assert same.failed and "are the same" in same["msg"]
    nothing = run_module(credentials_check, _args(auth_pypiserver))
    assert nothing.failed and "Nothing to check" in nothing["msg"]


def test_no_authenticated_action_is_refused(auth_pypiserver, run_module):
    res = run_module(credentials_check, _args(auth_pypiserver, password="x-password-1234", auth_actions=[]))
    assert res.failed and "authenticates nothing" in res["msg"]


@pytest.mark.parametrize("action, status", [("list", 200), ("download", 404)])
def test_list_and_download_probes(pypiserver_factory, run_module, action, status):
    server = pypiserver_factory(auth_actions=(action,), username="reader", password="reader-Passw0rd")
    res = run_module(
        credentials_check,
        {
            "url": server.url,
            "username": "reader",
            "password": "reader-Passw0rd",
            "refused_password": "wrong-Passw0rd-1",
            "auth_actions": [action],
        },
    )
    assert not res.failed, res
    assert (res["action"], res["accepted_status"], res["refused_status"]) == (action, status, 403)


def test_waits_until_the_server_has_the_new_htpasswd(auth_pypiserver, run_module):
    # the change lands a moment after the check starts, as a kubelet's Secret sync would
    timer = threading.Timer(1.0, ls.write_htpasswd, args=(auth_pypiserver.htpasswd, {"ci-user": NEW}))
    timer.start()
    try:
        res = run_module(
            credentials_check,
            _args(auth_pypiserver, password=NEW, refused_password=auth_pypiserver.password, wait=30, consecutive=2),
        )
    finally:
        timer.join()
    assert not res.failed, res
    assert res["attempts"] > 1 and (res["accepted_status"], res["refused_status"]) == (200, 403)


def test_unreachable_server_is_one_sentence(run_module):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = run_module(
        credentials_check, {"url": f"http://127.0.0.1:{port}/", "username": "u", "password": "p-123456789012"}
    )
    assert res.failed and res["msg"].startswith("Connection refused by")
