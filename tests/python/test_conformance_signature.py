"""Conformance of the signature: R formals, Python, Rd usage, reference.

Each argument list is read from its own source when the test runs:

* the reference: the Usage block of keras3 1.1.0's ``optimizer_lion`` page
  (``../shared/reference/`` from the repository root), parsed by R;
* the R function: the formals in ``R/*.R``, read from R's parse tree
  through rpy2 (nothing is evaluated), and those of the installed package,
  read in an ``Rscript``;
* the man page: ``\\usage`` of ``man/optimizer_lion.Rd``, parsed by
  ``tools::parse_Rd`` then R's parser;
* Python: ``inspect.signature(lionr.optimizer_lion)``.

Mapping: NULL is None, FALSE/TRUE are False/True, numbers compare as
numbers, strings as strings; R's ``...`` is ``**kwargs``, the arguments
before it are positional-or-keyword and those after it keyword-only. Any
difference in a name, the order, a default or the place of ``...`` fails
and shows both lists side by side.
"""

import pytest

import keras

import lionr
import rside

pytestmark = pytest.mark.backend_free

@pytest.fixture(autouse=True)
def _fresh_keras_state(_keras_reset_once):
    """Replaces conftest's reset before every test (0.3-0.7 s each, most of
    this module's time): these tests share no Keras state, so one reset for
    the module is enough."""
    yield


@pytest.fixture(scope="module")
def _keras_reset_once():
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)


SOURCES = {
    "reference": rside.reference_usage_args,
    "R formals": rside.r_source_args,
    "Rd usage": rside.rd_usage_args,
    "Python": lambda: rside.python_args(lionr.optimizer_lion),
}

# Every source against the contract, and R (the package's own function)
# against the other two, so a drift is caught even without the reference.
PAIRS = [
    ("reference", "R formals"),
    ("reference", "Python"),
    ("reference", "Rd usage"),
    ("R formals", "Python"),
    ("R formals", "Rd usage"),
]

NEEDS_R = {"reference", "R formals", "Rd usage"}  # parsed by R (rpy2)


def _marks(left, right):
    return [pytest.mark.r] if {left, right} & NEEDS_R else []


def assert_same_arguments(left_name, left, right_name, right):
    difference = rside.argument_differences(left_name, left, right_name, right)
    if difference is not None:
        pytest.fail(difference)


@pytest.mark.parametrize(
    "left, right",
    [pytest.param(a, b, marks=_marks(a, b), id=f"{a} vs {b}")
     for a, b in PAIRS],
)
def test_signatures_agree(left, right):
    assert_same_arguments(left, SOURCES[left](), right, SOURCES[right]())


@pytest.mark.r
def test_installed_r_package_has_the_source_formals():
    """A stale installed package would make the behaviour tests test
    something other than R/*.R."""
    assert_same_arguments(
        "R formals (R/*.R)", rside.r_source_args(),
        f"R formals (installed in {rside.r_library()})",
        rside.installed_r_args("jax"),
    )


def test_python_signature_is_the_documented_mapping():
    """Independent of R: **kwargs stands for `...`, so it exists once and
    nothing but keyword-only arguments follows it in R's order."""
    args = rside.python_args(lionr.optimizer_lion)
    places = [a.place for a in args]
    assert places.count("dots") == 1, places
    dots = places.index("dots")
    assert set(places[:dots]) <= {"positional"}, args
    assert set(places[dots + 1:]) <= {"keyword"}, args


@pytest.mark.r
def test_reference_usage_is_read():
    """Guards the parser: the reference's Usage holds the arguments its
    Arguments section describes, in the same order."""
    usage = [a.name for a in rside.reference_usage_args()]
    assert usage == rside.reference_argument_names()
    assert len(usage) > 10 and "..." in usage
