"""Checks of lionr's README and manual, run by ``./dev test``.

    python tools/docs_check.py blocks [FILE...]   run the code blocks
    python tools/docs_check.py links [SITE]       links and images of the built site
    python tools/docs_check.py readme             README length and its numbers

``blocks``: every fenced ```python and ```r block of README.md and
docs/*.md runs, each in a fresh process in an empty folder: Python on the
jax backend with this checkout's lionr, R through Rscript with the lionr
package of .Rlib and RETICULATE_PYTHON set to .venv's Python. A block is
skipped when the line before its fence is ``<!-- not run: REASON -->``, or
``<!-- needs: keras3 -->`` where the R package keras3 is not installed.

``links``: every ``href``/``src`` of every HTML page under the site (the
mkdocs site and the pkgdown site in ``r/``) that points inside the site
names a file that exists, and its ``#fragment`` an id on that page.
"""

import argparse
import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")
NEEDS = re.compile(r"^<!--\s*needs:\s*(?P<what>[\w.]+)\s*-->$")
LANGS = {"python", "r"}
BLOCK_TIMEOUT = 300
README_MAX_LINES = 200


class Block:
    def __init__(self, path, line, lang, code, before):
        self.path, self.line, self.lang, self.code = path, line, lang, code
        self.before = before  # the line right before the opening fence

    @property
    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path):
    """The ```python and ```r blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].lower()
        body, j = [], i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        if info in LANGS:
            before = lines[i - 1].strip() if i > 0 else ""
            found.append(Block(path, i + 1, info, "\n".join(body) + "\n", before))
        i = j + 1
    return found


def documents():
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def has_r_package(name):
    if not shutil.which("Rscript"):
        return False
    code = f'quit(status = if (requireNamespace("{name}", quietly = TRUE)) 0 else 1)'
    return subprocess.run(["Rscript", "-e", code], env=r_env(), capture_output=True,
                          timeout=120).returncode == 0


def python_env():
    env = dict(os.environ)
    env.update(KERAS_BACKEND="jax", PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               MPLBACKEND="Agg", KERAS_HOME=env.get("KERAS_HOME", str(ROOT / ".keras_home")))
    return env


def r_env():
    env = python_env()
    rlib = str(ROOT / ".Rlib")
    env.update(R_LIBS_USER=rlib, RETICULATE_PYTHON=str(ROOT / ".venv" / "bin" / "python"),
               R_LD_LIBRARY_PATH=env.get("R_LD_LIBRARY_PATH", "/usr/lib/R/lib"))
    return env


def skip_reason(block, installed):
    m = NOT_RUN.match(block.before)
    if m:
        return "not run: " + m["reason"]
    m = NEEDS.match(block.before)
    if m and not installed(m["what"]):
        return f"needs the R package {m['what']}, which is not installed"
    return None


def run_block(block):
    """(seconds, None) when the block ran cleanly, else (seconds, output)."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lionr-docs-") as work:
        if block.lang == "python":
            script = Path(work, "block.py")
            cmd, env = [sys.executable, str(script)], python_env()
        else:
            script = Path(work, "block.R")
            cmd, env = ["Rscript", str(script)], r_env()
        script.write_text(block.code, encoding="utf-8")
        try:
            done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                                  timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            return time.monotonic() - t0, f"timed out after {BLOCK_TIMEOUT} s"
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip().splitlines()
        return time.monotonic() - t0, f"exit {done.returncode}:\n" + "\n".join(out[-25:])
    return time.monotonic() - t0, None


def check_blocks(paths, jobs):
    blocks = [b for p in paths for b in blocks_of(p)]
    cache = {}

    def installed(name):
        if name not in cache:
            cache[name] = has_r_package(name)
        return cache[name]

    todo, skipped = [], []
    for b in blocks:
        reason = skip_reason(b, installed)
        (skipped.append((b, reason)) if reason else todo.append(b))
    print(f"{len(blocks)} code blocks: running {len(todo)} ({jobs} at a time)", flush=True)
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for b, (secs, error) in zip(todo, pool.map(run_block, todo)):
            print(f"  {'ok  ' if error is None else 'FAIL'} {b.where} ({b.lang}, {secs:.1f} s)",
                  flush=True)
            if error is not None:
                failed.append((b, error))
    for b, error in failed:
        print(f"---- {b.where} ({b.lang}) failed: {error}")
    n_py = sum(b.lang == "python" for b in todo)
    print(f"Summary: {len(todo) - len(failed)} of {len(todo)} blocks ran cleanly "
          f"({n_py} python, {len(todo) - n_py} r); {len(skipped)} skipped:")
    for b, reason in skipped:
        print(f"  skipped {b.where} ({b.lang}): {reason}")
    return not failed


class _Page(html.parser.HTMLParser):
    """The ids a page defines and the URLs it refers to."""

    REFS = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src",
            "iframe": "src"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        attr = self.REFS.get(tag)
        if attr and attrs.get(attr):
            self.refs.append((tag, attrs[attr]))


def parse_page(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(site):
    """'page: reference (why)' for each internal reference that does not resolve."""
    site = site.resolve()
    pages = {p.resolve(): parse_page(p) for p in site.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for tag, ref in page.refs:
            url = urllib.parse.urlsplit(ref)
            if url.scheme or url.netloc or ref.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = path if not url.path else (
                (site / url.path.lstrip("/")) if url.path.startswith("/")
                else path.parent / urllib.parse.unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}: {tag} {ref}"
            if site not in target.parents and target != site:
                broken.append(f"{where} (outside the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse_page(target).ids
                if urllib.parse.unquote(url.fragment) not in ids:
                    broken.append(f"{where} (no id '{url.fragment}' there)")
    return len(pages), broken


def check_links(site):
    if not (site / "index.html").is_file():
        print(f"No site at {site}: run ./dev docs first.")
        return False
    n, broken = broken_links(site)
    r_site = (site / "r" / "index.html").is_file()
    print(f"{n} HTML pages under {site} (R site {'included' if r_site else 'not built'}); "
          f"{len(broken)} broken internal links or images")
    for b in broken:
        print("  " + b)
    return not broken


def check_readme():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    ok = len(lines) <= README_MAX_LINES
    print(f"README.md: {len(lines)} lines (at most {README_MAX_LINES}){'' if ok else ': TOO LONG'}")
    sys.path.insert(0, str(ROOT / "tools"))
    import readme_numbers

    stale = readme_numbers.main(["--check"]) != 0
    return ok and not stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("blocks", help="run the code blocks")
    b.add_argument("files", nargs="*", type=Path)
    b.add_argument("--jobs", type=int, default=2)
    b.add_argument("--list", action="store_true", help="only list the blocks")
    lk = sub.add_parser("links", help="check the built site's links and images")
    lk.add_argument("site", nargs="?", type=Path, default=ROOT / "build" / "site")
    sub.add_parser("readme", help="README length, and its numbers up to date")
    args = parser.parse_args(argv)
    if args.what == "blocks":
        paths = [p.resolve() for p in args.files] or documents()
        if args.list:
            for p in paths:
                for blk in blocks_of(p):
                    print(f"{blk.where} {blk.lang} before={blk.before!r}")
            return 0
        ok = check_blocks(paths, args.jobs)
    elif args.what == "links":
        ok = check_links(args.site)
    else:
        ok = check_readme()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
