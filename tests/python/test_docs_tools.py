"""The manual's checkers (tools/docs_check.py) find what they are for: code
blocks and their skip markers, broken links, missing anchors."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import docs_check  # noqa: E402

PAGE = """# Title

```python
print(1)
```

<!-- not run: needs a GPU -->
```r
stop("never")
```

<!-- needs: keras3 -->
```r
library(keras3)
```

* a list

  ```python
  x = 2
  ```

````md
```python
inside another fence: not a block
```
````

```sh
echo shell blocks are not run
```
"""


def test_blocks_and_their_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    blocks = docs_check.blocks_of(page)
    assert [(b.lang, b.code) for b in blocks] == [
        ("python", "print(1)\n"),
        ("r", 'stop("never")\n'),
        ("r", "library(keras3)\n"),
        ("python", "x = 2\n"),
    ]
    reasons = [docs_check.skip_reason(b, installed=lambda name: False) for b in blocks]
    assert reasons == [None, "not run: needs a GPU",
                       "needs the R package keras3, which is not installed", None]
    assert docs_check.skip_reason(blocks[2], installed=lambda name: True) is None


def test_broken_links_are_found(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1 id="top">x</h1><a href="r/index.html">R</a> <a href="#top">up</a>'
        '<a href="page.html#there">ok</a> <a href="page.html#nowhere">bad anchor</a>'
        '<img src="missing.png"> <a href="https://example.org/x">outside</a>')
    (tmp_path / "page.html").write_text('<p id="there"><a href="../../etc/passwd">up</a></p>')
    (tmp_path / "r" / "index.html").write_text('<a href="../index.html#top">back</a>')
    n, broken = docs_check.broken_links(tmp_path)
    assert n == 3
    assert sorted(broken) == [
        "index.html: a page.html#nowhere (no id 'nowhere' there)",
        "index.html: img missing.png (no such file)",
        "page.html: a ../../etc/passwd (outside the site)",
    ]


def test_readme_numbers_agree_with_the_step_table():
    # The "vs keras Lion" column that bench_step.py wrote into step.md, for
    # lionr's rows run Keras's way at the largest size, is what the README's
    # generator computes from step.json.
    import readme_numbers

    step = readme_numbers._load("step.json")
    size = f"{max(step['sizes']):.0e}"
    rows = [line.split("|")[1:-1] for line in
            (readme_numbers.RESULTS / "step.md").read_text().splitlines()
            if line.startswith("| ")]
    for backend, how in readme_numbers.KERAS_WAY.items():
        for retained in (False, True):
            want_how = how + (", memory retained" if retained else "")
            cells = [r for r in rows if [c.strip() for c in r[:4]]
                     == [backend, "lionr.Lion", want_how, size]]
            ratio = readme_numbers.step_ratio(step, backend, retained)
            if retained and ratio is None and not cells:
                continue  # a run without --host-memory: no such rows
            assert len(cells) == 1, (backend, want_how)
            assert abs(ratio - float(cells[0][7])) < 0.006, (backend, retained, ratio)
