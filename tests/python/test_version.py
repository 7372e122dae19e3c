"""One version for the Python package, the R package and the change log.

The version is written once, in lionr/__init__.py; pyproject.toml takes it
from there (setuptools' dynamic ``attr``), and DESCRIPTION and NEWS.md must
say the same. ``./dev dist`` checks the built wheel and R tarball too.
"""

import ast
import re
from pathlib import Path

import pytest

import lionr

pytestmark = pytest.mark.backend_free

ROOT = Path(__file__).resolve().parents[2]


def init_version():
    """__version__ as written in lionr/__init__.py (what setuptools reads)."""
    tree = ast.parse((ROOT / "lionr" / "__init__.py").read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__version__"]):
            return ast.literal_eval(node.value)
    raise AssertionError("lionr/__init__.py assigns no __version__")


def description_field(name):
    text = (ROOT / "DESCRIPTION").read_text()
    found = re.search(rf"^{name}:\s*(\S+)\s*$", text, re.MULTILINE)
    assert found, f"DESCRIPTION has no {name} field"
    return found.group(1)


def test_version_is_a_plain_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", init_version())
    assert lionr.__version__ == init_version()


def test_pyproject_takes_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    if "version" in project:  # a static version must then be the same
        assert project["version"] == init_version()
    else:
        assert "version" in project.get("dynamic", [])
        dynamic = meta["tool"]["setuptools"]["dynamic"]["version"]
        assert dynamic == {"attr": "lionr.__version__"}


def test_description_has_the_same_version():
    assert description_field("Package") == "lionr"
    assert description_field("Version") == init_version()


def test_news_starts_with_this_version():
    # R's news() reads level-1 headings "# <package> <version>".
    headings = re.findall(r"^# (\S+) (\S+)\s*$",
                          (ROOT / "NEWS.md").read_text(), re.MULTILINE)
    assert headings, "NEWS.md has no '# lionr <version>' heading"
    assert headings[0] == ("lionr", init_version())
    versions = [v for _, v in headings]
    assert len(set(versions)) == len(versions), "a version appears twice in NEWS.md"
