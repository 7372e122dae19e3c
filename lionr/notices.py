"""Warnings that carry fields, and a way to hand them to another language.

A ``LionrWarning`` is a ``UserWarning`` whose instance holds, beside its
message, named fields (``argument``: the argument it is about). Python shows
it as it shows any warning. ``route(callback)``, which lionr's R package
calls, sends each ``LionrWarning`` raised in the main thread to
``callback(kind, message, fields)`` instead of showing it, so that R can
signal it as an R condition; every other warning, and one raised in another
thread, is shown as before. What the callback raises propagates from
``warnings.warn`` as any exception does.
"""

import threading
import warnings


class LionrWarning(UserWarning):
    """A lionr warning: ``message`` plus the named ``fields``."""

    def __init__(self, message, **fields):
        super().__init__(message)
        self.fields = fields


_routed = {"callback": None}


def route(callback):
    """Send every ``LionrWarning`` shown from now on in the main thread to
    ``callback(kind, message, fields)``: ``kind`` is the warning's class as
    ``module.Name``, ``fields`` a dict. A second call replaces the callback;
    ``route(None)`` shows them as Python does again."""
    if _routed["callback"] is None and callback is not None:
        _wrap_showwarning()
    _routed["callback"] = callback


def _wrap_showwarning():
    shown_before = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        callback = _routed["callback"]
        if (callback is not None and isinstance(message, LionrWarning)
                and threading.current_thread() is threading.main_thread()):
            kind = f"{category.__module__}.{category.__qualname__}"
            callback(kind, str(message), dict(message.fields))
            return
        shown_before(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
