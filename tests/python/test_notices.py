"""lionr.notices: warnings with fields, and their routing to a callback
(what the R package uses to signal them as R conditions)."""

import threading
import warnings

import pytest

from lionr import notices
from lionr.hyper import FrozenHyperparameterWarning


@pytest.fixture
def routed():
    """Inside a fresh catch_warnings block (which restores showwarning),
    lionr warnings go to a list; what Python shows goes to the log."""
    received = []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        notices.route(lambda *a: received.append(a))
        try:
            yield received, shown
        finally:
            notices.route(None)


def test_fields_travel_with_the_warning():
    with pytest.warns(FrozenHyperparameterWarning) as caught:
        warnings.warn(FrozenHyperparameterWarning("text", argument="beta_2"), stacklevel=1)
    assert caught[0].message.fields == {"argument": "beta_2"}
    assert str(caught[0].message) == "text"


def test_routed_warning_reaches_the_callback_instead_of_python(routed):
    received, shown = routed
    warnings.warn(FrozenHyperparameterWarning("frozen", argument="beta_1"), stacklevel=1)
    warnings.warn("plain", UserWarning, stacklevel=1)
    assert received == [
        ("lionr.hyper.FrozenHyperparameterWarning", "frozen", {"argument": "beta_1"})
    ]
    assert [str(w.message) for w in shown] == ["plain"]


def test_other_threads_show_it_as_python_does(routed):
    received, shown = routed
    thread = threading.Thread(
        target=warnings.warn,
        args=(FrozenHyperparameterWarning("elsewhere", argument="x"),),
    )
    thread.start()
    thread.join(timeout=30)
    assert received == []
    assert [str(w.message) for w in shown] == ["elsewhere"]


def test_an_exception_from_the_callback_propagates(routed):
    def refuse(*args):
        raise RuntimeError("warnings are errors here")

    notices.route(refuse)
    with pytest.raises(RuntimeError, match="warnings are errors here"):
        warnings.warn(FrozenHyperparameterWarning("frozen", argument="beta_1"), stacklevel=1)
