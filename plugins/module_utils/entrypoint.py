# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one ``main()`` of every module: argument parsing, library checks, error translation, exit.

Every module's ``main()`` is a single :func:`run_module` call, so that all of them fail the same way:

- a Python library the module needs is missing: ``missing_required_lib``'s sentence, with the import's
  traceback as ``exception``;
- a domain error (the collection's error classes, such as ``local_server.ServerError`` or
  ``simple_index.IndexReadError``): its one sentence as ``msg``, plus the fields the module declares for it
  (``log_tail``, ``status`` ...), and no traceback: the sentence is the whole story;
- anything else is a bug: one sentence, ``Unexpected <type> <doing>: <error>; this is a bug in <module>, please
  report it with the exception text.``, with the traceback as ``exception``.

A traceback given as ``exception`` reaches the user only when tracebacks are on: ansible-core 2.19 sends and shows
it with ``ANSIBLE_DISPLAY_TRACEBACK=error`` (``display_traceback`` in ansible.cfg), older cores at ``-vvv``. By
default the sentence is all the user sees.
"""

from __future__ import annotations

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

COLLECTION = "pypi_ops.pypiserver"

# What a domain error adds to the failure: None (its sentence only), names of the exception's attributes to
# return beside ``msg`` (``("log_tail",)``), or a function of (exception, module) giving all the fail_json fields.
# (typing's spelling: ansible-test's pylint takes ``X | Y`` between these at run time for an error)
ErrorFields = t.Optional[t.Union[tuple[str, ...], t.Callable[[t.Any, AnsibleModule], dict[str, t.Any]]]]  # noqa: UP007, UP045


class Library(t.NamedTuple):
    """A Python library a module needs: its pip name, whether it imported, and the import's error."""

    name: str
    present: bool
    error: BaseException | str | None = None

    def traceback(self) -> str:
        """The import's traceback (or its message, when only that was kept)."""
        err = self.error
        if isinstance(err, BaseException):
            return "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return str(err or f"No module named {self.name!r}")


def error_fields(exc: BaseException, module: AnsibleModule, how: ErrorFields) -> dict[str, t.Any]:
    """The fail_json fields of a domain error: its sentence (``msg``) and what ``how`` adds."""
    if callable(how):
        return how(exc, module)
    fields: dict[str, t.Any] = {"msg": getattr(exc, "msg", None) or str(exc)}
    for name in how or ():
        fields[name] = getattr(exc, name, None)
    return fields


def unexpected(exc: BaseException, name: str, doing: str) -> str:
    """The one sentence for an exception nobody expected (a bug)."""
    return (
        f"Unexpected {type(exc).__name__} {doing}: {exc}; this is a bug in {COLLECTION}.{name}, "
        "please report it with the exception text."
    )


def run_module(
    name: str,
    argument_spec: dict[str, t.Any],
    run: t.Callable[[AnsibleModule], dict[str, t.Any]],
    *,
    libraries: t.Sequence[Library] = (),
    errors: t.Mapping[type[BaseException], ErrorFields] | None = None,
    doing: str | t.Callable[[dict[str, t.Any]], str] = "while running",
    fail_fields: t.Callable[[AnsibleModule], dict[str, t.Any]] | None = None,
    **module_kwargs: t.Any,
) -> None:
    """Build the module, check its libraries, call ``run(module)`` and exit with its result, or fail in one sentence.

    ``name``: the module's short name, for the bug sentence. ``run`` returns the result for ``exit_json`` (it may
    call ``fail_json``/``exit_json`` itself). ``libraries``: checked in order before ``run``. ``errors``: the
    domain error classes ``run`` may raise, each with what it adds to the failure (see :data:`ErrorFields`);
    the first matching class wins. ``doing``: what the module was doing, for the bug sentence (``while reading
    URL``), or a function of the params giving it. ``fail_fields``: fields every failure carries (a partial
    result). ``module_kwargs`` go to :class:`AnsibleModule` (``supports_check_mode``, ``mutually_exclusive`` ...).
    """
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)

    def fail(**fields: t.Any) -> t.NoReturn:
        extra = fail_fields(module) if fail_fields else {}
        module.fail_json(**{**extra, **fields})
        raise AssertionError("fail_json returned")  # pragma: no cover - fail_json exits

    for lib in libraries:
        if not lib.present:
            fail(msg=missing_required_lib(lib.name), exception=lib.traceback())
    handled = tuple((errors or {}).items())
    try:
        result = run(module)
    except Exception as exc:  # noqa: BLE001 - every error becomes one sentence; a bug's traceback goes to -vvv
        for cls, how in handled:
            if isinstance(exc, cls):
                fail(**error_fields(exc, module, how))
        fail(msg=unexpected(exc, name, _doing(doing, module.params)), exception=traceback.format_exc())
    module.exit_json(**result)


def _doing(doing: str | t.Callable[[dict[str, t.Any]], str], params: dict[str, t.Any]) -> str:
    if not callable(doing):
        return doing
    try:
        return doing(params)
    except Exception:  # noqa: BLE001 - the description must never hide the bug it describes
        return "while running"
