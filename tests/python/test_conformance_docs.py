"""Conformance of the documentation: every argument is documented, in the
Rd ``\\arguments`` of ``man/optimizer_lion.Rd`` and in the Args section of
``lionr.optimizer_lion``'s docstring, and nothing documented is not an
argument. The argument lists come from the R source and from
``inspect.signature``; the Rd is parsed by ``tools::parse_Rd``.
"""

import inspect
import re

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


def docstring_args(function):
    """(name, description) for each entry of a Google-style Args section.

    An entry is a line indented one step under ``Args:`` that starts with
    a name (``**kwargs`` included) and a colon; its description runs to the
    next entry or the end of the section.
    """
    doc = inspect.getdoc(function) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    except StopIteration:
        return None
    indent = len(lines[start]) - len(lines[start].lstrip())
    entries = []
    entry_indent = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        here = len(line) - len(line.lstrip())
        if here <= indent:
            break  # the next section
        if entry_indent is None:
            entry_indent = here
        match = re.match(r"(\*{0,2}[A-Za-z_]\w*)\s*(?:\([^)]*\))?:(.*)$",
                         line.strip())
        if here == entry_indent and match:
            entries.append([match.group(1), match.group(2).strip()])
        elif entries:
            entries[-1][1] += " " + line.strip()
    return [(name, text.strip()) for name, text in entries]


def _python_names():
    names = []
    for p in inspect.signature(lionr.optimizer_lion).parameters.values():
        prefix = {inspect.Parameter.VAR_KEYWORD: "**",
                  inspect.Parameter.VAR_POSITIONAL: "*"}.get(p.kind, "")
        names.append(prefix + p.name)
    return names


def _rd_names():
    """Names in the Rd's \\item{}s; an item may name several, comma-separated,
    and `...` may be written \\dots or \\ldots."""
    documented = []
    for label, text in rside.rd_sections()["items"]:
        label = label.replace("\\dots", "...").replace("\\ldots", "...")
        for name in label.split(","):
            documented.append((name.strip(), text.strip()))
    return documented


def assert_documented(where, documented, arguments):
    names = [n for n, _ in documented]
    missing = [a for a in arguments if a not in names]
    extra = [n for n in names if n not in arguments]
    twice = sorted({n for n in names if names.count(n) > 1})
    empty = [n for n, text in documented if not text]
    problems = []
    if missing:
        problems.append(f"arguments not documented: {missing}")
    if extra:
        problems.append(f"documented but not arguments: {extra}")
    if twice:
        problems.append(f"documented more than once: {twice}")
    if empty:
        problems.append(f"documented with no description: {empty}")
    assert not problems, (
        f"{where}:\n  " + "\n  ".join(problems)
        + f"\n  arguments:  {arguments}\n  documented: {names}"
    )


def test_python_docstring_documents_every_argument():
    documented = docstring_args(lionr.optimizer_lion)
    assert documented is not None, (
        "lionr.optimizer_lion's docstring has no 'Args:' section")
    assert_documented("Args of lionr.optimizer_lion's docstring",
                      documented, _python_names())


@pytest.mark.r
def test_rd_documents_every_argument():
    arguments = [a.name for a in rside.r_source_args()]
    assert_documented(f"\\arguments of {rside.RD_FILE.name}",
                      _rd_names(), arguments)


@pytest.mark.r
def test_rd_and_docstring_document_the_same_arguments():
    """The two pages describe the same function: the same names, R's `...`
    being Python's **kwargs."""
    rd = sorted(n for n, _ in _rd_names())
    py = sorted("..." if n == "**kwargs" else n
                for n, _ in docstring_args(lionr.optimizer_lion) or [])
    assert rd == py, f"Rd: {rd}\nPython docstring: {py}"
