"""Reaching the R side of lionr from the conformance tests.

Two ways, never mixed in one process:

* ``rpy2`` (embedded R) for pure-R work only: parsing the R source, the Rd
  file and R code text. Nothing here loads reticulate or Python from R.
* ``Rscript`` subprocesses for anything that calls Python (the installed
  lionr R package, reticulate), with the environment of ``r_env()``.

Paths are taken relative to this checkout (``ROOT``), so a scratch copy of
the repository tests itself. The R library is ``$R_LIBS_USER`` when set,
else ``ROOT/.Rlib``.

Argument lists from every source are turned into the same form, a list of
``Arg(name, place, kind, value)``:

* ``place``: ``"positional"`` (before R's ``...``; positional-or-keyword in
  Python), ``"dots"`` (R's ``...``; Python's ``**kwargs``) or ``"keyword"``
  (after ``...``; keyword-only in Python);
* ``kind``/``value``: ``("null", None)``, ``("logical", True/False)``,
  ``("number", float)``, ``("string", str)``, ``("none", None)`` for no
  default, or ``("expr", text)`` for anything else.
"""

import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REFERENCE = ROOT / ".." / "shared" / "reference" / "optimizer_lion.keras3-1.1.0.txt"
RD_FILE = ROOT / "man" / "optimizer_lion.Rd"
R_DIR = ROOT / "R"
FUNCTION = "optimizer_lion"
PACKAGE = "lionr"


# --------------------------------------------------------------------------
# Where things are, and skipping when they are not there
# --------------------------------------------------------------------------

def r_library():
    return Path(os.environ.get("R_LIBS_USER") or ROOT / ".Rlib")


def _require(condition, reason):
    """Skip with ``reason`` unless ``condition``; with LIONR_REQUIRE_R=1 fail."""
    if condition:
        return
    if os.environ.get("LIONR_REQUIRE_R") == "1":
        pytest.fail(reason + " (LIONR_REQUIRE_R=1, so this is a failure)")
    pytest.skip(reason)


def require_rscript():
    _require(shutil.which("Rscript") is not None,
             "Rscript is not on PATH; install R (./dev setup does it)")


def require_rpy2():
    try:
        import rpy2  # noqa: F401
    except Exception as error:  # ImportError, or R not found at import
        _require(False, f"rpy2 cannot be imported: {error}")


def require_r_source():
    _require(any(R_DIR.glob("*.R")),
             f"the R source of lionr is not in this checkout ({R_DIR})")


def require_rd():
    _require(RD_FILE.is_file(), f"the man page {RD_FILE} does not exist")


def require_installed_package():
    require_rscript()
    lib = r_library()
    _require((lib / PACKAGE / "DESCRIPTION").is_file(),
             f"the lionr R package is not installed in {lib}; "
             "run ./dev setup (or R CMD INSTALL --library=.Rlib .)")


# --------------------------------------------------------------------------
# Pure R through rpy2
# --------------------------------------------------------------------------

_R_HELPERS = r"""
local({
  describe <- function(args) {
    # args: a list or pairlist of unevaluated defaults (formals, or the
    # arguments of a parsed call); returns name, kind and value as text.
    nm <- names(args)
    if (is.null(nm)) nm <- rep("", length(args))
    n <- length(args)
    name <- character(n); kind <- character(n); value <- character(n)
    empty <- unname(alist(x = ))  # a list holding the empty symbol
    for (i in seq_len(n)) {
      name[i] <- nm[i]
      # (an argument without default holds the empty symbol, which cannot
      # be bound to a variable: test it inside a list)
      if (identical(unname(as.list(args[i])), empty)) {
        kind[i] <- if (nm[i] == "...") "dots" else "none"
        next
      }
      v <- args[[i]]
      if (nm[i] == "" && identical(v, as.name("..."))) {
        name[i] <- "..."; kind[i] <- "dots"; next
      }
      # a negative number is a call to unary minus
      if (is.call(v) && identical(v[[1]], as.name("-")) && length(v) == 2 &&
          is.numeric(v[[2]])) v <- -v[[2]]
      if (is.null(v)) {
        kind[i] <- "null"
      } else if (is.logical(v) && length(v) == 1 && !is.na(v)) {
        kind[i] <- "logical"; value[i] <- if (v) "TRUE" else "FALSE"
      } else if (is.numeric(v) && length(v) == 1 && !is.na(v)) {
        kind[i] <- "number"; value[i] <- sprintf("%.17g", v)
      } else if (is.character(v) && length(v) == 1 && !is.na(v)) {
        kind[i] <- "string"; value[i] <- v
      } else {
        kind[i] <- "expr"; value[i] <- paste(deparse(v), collapse = " ")
      }
    }
    list(name = name, kind = kind, value = value)
  }

  source_formals <- function(dir, fname) {
    # The formals of `fname <- function(...)` found in the R files of dir,
    # read from the parse tree: nothing is evaluated.
    files <- list.files(dir, pattern = "[.][Rr]$", full.names = TRUE)
    found <- list()
    for (f in files) {
      for (e in parse(f, keep.source = FALSE)) {
        if (is.call(e) && length(e) == 3 &&
            (identical(e[[1]], as.name("<-")) || identical(e[[1]], as.name("="))) &&
            identical(e[[2]], as.name(fname)) && is.call(e[[3]]) &&
            identical(e[[3]][[1]], as.name("function"))) {
          found[[length(found) + 1]] <- list(file = basename(f), formals = e[[3]][[2]])
        }
      }
    }
    if (length(found) != 1)
      stop(sprintf("expected one definition of %s in %s, found %d",
                   fname, dir, length(found)))
    describe(as.list(found[[1]]$formals))
  }

  call_args <- function(text, fname) {
    # The arguments of the call to fname in a piece of R code (a usage).
    exprs <- parse(text = text, keep.source = FALSE)
    calls <- Filter(function(e) is.call(e) && identical(e[[1]], as.name(fname)),
                    as.list(exprs))
    if (length(calls) != 1)
      stop(sprintf("expected one call to %s in the usage, found %d",
                   fname, length(calls)))
    describe(as.list(calls[[1]])[-1])
  }

  rd_sections <- function(path) {
    rd <- tools::parse_Rd(path)
    tags <- vapply(rd, function(x) attr(x, "Rd_tag"), "")
    text <- function(x) {  # a piece of Rd, back as Rd source text
      class(x) <- "Rd"
      paste(as.character(x, deparse = TRUE), collapse = "")
    }
    code <- function(x) {  # the R code of \\usage, \\dots read as ...
      paste(vapply(x, function(el) {
        tag <- attr(el, "Rd_tag")
        if (!is.null(tag) && tag %in% c("\\dots", "\\ldots")) "..."
        else if (is.character(el)) paste(el, collapse = "")
        else text(el)
      }, ""), collapse = "")
    }
    usage <- if (any(tags == "\\usage"))
      code(rd[[which(tags == "\\usage")[1]]]) else NA_character_
    items <- character(); descs <- character()
    if (any(tags == "\\arguments")) {
      for (x in rd[[which(tags == "\\arguments")[1]]]) {
        if (identical(attr(x, "Rd_tag"), "\\item")) {
          items <- c(items, text(x[[1]]))
          descs <- c(descs, text(x[[2]]))
        }
      }
    }
    list(usage = usage, items = items, descs = descs)
  }

  list(source_formals = source_formals, call_args = call_args,
       rd_sections = rd_sections, describe = describe)
})
"""

_helpers = None
_R_DIRS = ("R_SHARE_DIR", "R_INCLUDE_DIR", "R_DOC_DIR")


def _set_r_dirs():
    """Embedded R is not started by the ``R`` shell script, which is what
    sets R's share/include/doc folders (on Debian, /usr/share/R/...; without
    them tools::parse_Rd cannot find its system macros). Ask Rscript."""
    if all(os.environ.get(v) for v in _R_DIRS) or not shutil.which("Rscript"):
        return
    names = ", ".join(f"'{v}'" for v in _R_DIRS)
    code = f"cat(Sys.getenv(c({names})), sep = '\\n')"
    done = subprocess.run(["Rscript", "--vanilla", "-e", code],
                          capture_output=True, text=True, timeout=60)
    for var, value in zip(_R_DIRS, done.stdout.splitlines()):
        if value and not os.environ.get(var):
            os.environ[var] = value


def _r():
    """The R helper functions, in an rpy2-embedded R (pure R only)."""
    global _helpers
    require_rpy2()
    if _helpers is None:
        _set_r_dirs()
        import rpy2.robjects as ro

        _helpers = ro.r(_R_HELPERS)
    return _helpers


def _py(r_value):
    """An R list of character vectors (or one vector) as Python lists."""
    names = list(r_value.names) if r_value.names is not None else None
    try:
        return {n: [str(x) for x in v] for n, v in zip(names, r_value)}
    except TypeError:
        return [str(x) for x in r_value]


@dataclass(frozen=True)
class Arg:
    name: str
    place: str
    kind: str
    value: object

    def shown(self):
        if self.kind == "dots":
            return "..."
        default = {
            "none": "(no default)",
            "null": "NULL/None",
            "logical": "TRUE/True" if self.value else "FALSE/False",
            "number": f"{self.value!r}",
            "string": json.dumps(self.value),
            "expr": f"<{self.value}>",
        }[self.kind]
        return f"{self.name} = {default}  [{self.place}]"


def _from_r_description(described):
    args = []
    place = "positional"
    for name, kind, value in zip(described["name"], described["kind"],
                                 described["value"]):
        if kind == "dots":
            args.append(Arg("...", "dots", "dots", None))
            place = "keyword"
            continue
        if kind == "logical":
            value = value == "TRUE"
        elif kind == "number":
            value = float(value)
        elif kind in ("null", "none"):
            value = None
        args.append(Arg(name, place, kind, value))
    return args


def r_source_args():
    """The formals of optimizer_lion as written in R/*.R (parse tree only)."""
    require_r_source()
    return _from_r_description(
        _py(_r()[0](str(R_DIR), FUNCTION))  # source_formals
    )


def r_usage_args(text):
    """The arguments of the optimizer_lion call in R usage text."""
    return _from_r_description(_py(_r()[1](text, FUNCTION)))


def rd_sections():
    """The man page, parsed by tools::parse_Rd: usage text and argument items."""
    require_rd()
    out = _py(_r()[2](str(RD_FILE)))
    return {
        "usage": out["usage"][0],
        "items": [(n, d) for n, d in zip(out["items"], out["descs"])],
    }


def rd_usage_args():
    return r_usage_args(rd_sections()["usage"])


# --------------------------------------------------------------------------
# The reference (keras3 1.1.0 documentation, plain text)
# --------------------------------------------------------------------------

def reference_text():
    if not REFERENCE.is_file():
        pytest.skip(f"the reference {REFERENCE.resolve()} is missing, so "
                    "there is nothing to compare with")
    return REFERENCE.read_text(encoding="utf-8")


def _reference_section(title, next_title):
    lines = reference_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == title)
        end = next(i for i, line in enumerate(lines)
                   if i > start and line.strip() == next_title)
    except StopIteration:
        raise AssertionError(
            f"the reference {REFERENCE} has no '{title}' ... '{next_title}' "
            "section") from None
    return lines[start + 1:end]


def reference_usage_args():
    return r_usage_args("\n".join(_reference_section("Usage", "Arguments")))


def reference_argument_names():
    """Argument names listed under Arguments: a line holding only a name."""
    names = []
    for line in _reference_section("Arguments", "Value"):
        text = line.strip()
        if re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", text):
            names.append(text)
    return names


# --------------------------------------------------------------------------
# The Python side
# --------------------------------------------------------------------------

def _python_default(default):
    if default is inspect.Parameter.empty:
        return "none", None
    if default is None:
        return "null", None
    if isinstance(default, bool):
        return "logical", default
    if isinstance(default, (int, float)):
        return "number", float(default)
    if isinstance(default, str):
        return "string", default
    return "expr", repr(default)


def python_args(function):
    """The signature of a Python function in the common form.

    R's order is kept: positional-or-keyword parameters, then ``**kwargs``
    in the place of ``...``, then keyword-only ones. Positional-only
    parameters and ``*args`` have no R counterpart and show as such.
    """
    P = inspect.Parameter
    groups = {"before": [], "dots": [], "after": []}
    for p in inspect.signature(function).parameters.values():
        kind, value = _python_default(p.default)
        if p.kind is P.POSITIONAL_OR_KEYWORD:
            groups["before"].append(Arg(p.name, "positional", kind, value))
        elif p.kind is P.VAR_KEYWORD:
            groups["dots"].append(Arg("...", "dots", "dots", None))
        elif p.kind is P.KEYWORD_ONLY:
            groups["after"].append(Arg(p.name, "keyword", kind, value))
        elif p.kind is P.POSITIONAL_ONLY:
            groups["before"].append(Arg(p.name, "positional-only", kind, value))
        else:  # *args
            groups["before"].append(Arg("*" + p.name, "var-positional", "none", None))
    return groups["before"] + groups["dots"] + groups["after"]


# --------------------------------------------------------------------------
# Comparing two argument lists
# --------------------------------------------------------------------------

def _same(a, b):
    if (a.name, a.place, a.kind) != (b.name, b.place, b.kind):
        return False
    if a.kind == "number":
        return a.value == b.value or (
            math.isnan(a.value) and math.isnan(b.value))
    return a.value == b.value


def argument_differences(left_name, left, right_name, right):
    """A side-by-side table if the two lists differ, else None."""
    n = max(len(left), len(right))
    rows = []
    differ = False
    for i in range(n):
        a = left[i] if i < len(left) else None
        b = right[i] if i < len(right) else None
        same = a is not None and b is not None and _same(a, b)
        differ |= not same
        rows.append((" " if same else "!", i + 1,
                     a.shown() if a else "(nothing)",
                     b.shown() if b else "(nothing)"))
    if not differ:
        return None
    width = max(len(left_name), *(len(r[2]) for r in rows))
    lines = [f"  {'':1} {'#':>2}  {left_name:<{width}}  |  {right_name}"]
    lines += [f"  {m} {i:>2}  {a:<{width}}  |  {b}" for m, i, a, b in rows]
    return (f"{left_name} and {right_name} differ (rows marked !):\n"
            + "\n".join(lines))


# --------------------------------------------------------------------------
# Rscript subprocesses (R code that calls Python)
# --------------------------------------------------------------------------

def python_path_entries():
    """What R's Python must import: the lionr this pytest imported, and the
    test helpers next to this file."""
    import lionr

    lionr_parent = str(Path(lionr.__file__).resolve().parents[1])
    return [lionr_parent, str(HERE)]


def r_env(backend):
    env = dict(os.environ)
    entries = python_path_entries()
    if env.get("PYTHONPATH"):
        entries.append(env["PYTHONPATH"])
    env.update(
        RETICULATE_PYTHON=sys.executable,
        R_LD_LIBRARY_PATH="/usr/lib/R/lib",
        R_LIBS_USER=str(r_library()),
        KERAS_BACKEND=backend,
        KERAS_HOME=env.get("KERAS_HOME") or str(ROOT / ".keras_home"),
        PYTHONPATH=os.pathsep.join(entries),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return env


def r_string(text):
    """``text`` as an R string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_rscript(code, backend, timeout=300):
    """Run R ``code`` in one Rscript with the lionr R library first on the
    library path. The code writes its result to the file named by the R
    variable ``.out_path``; its text is returned."""
    require_installed_package()
    with tempfile.TemporaryDirectory(prefix="lionr-conformance-") as tmp:
        out = Path(tmp) / "out.txt"
        script = Path(tmp) / "script.R"
        prologue = (
            f".out_path <- {r_string(str(out))}\n"
            f".libPaths(c({r_string(str(r_library()))}, .libPaths()))\n"
            f".helpers <- {_R_HELPERS.strip()}\n"
        )
        script.write_text(prologue + code, encoding="utf-8")
        done = subprocess.run(
            ["Rscript", "--vanilla", str(script)], env=r_env(backend),
            capture_output=True, text=True, timeout=timeout, cwd=tmp,
        )
        if done.returncode != 0 or not out.is_file():
            raise AssertionError(
                f"Rscript failed (exit {done.returncode}).\n"
                f"---- stdout ----\n{done.stdout[-3000:]}\n"
                f"---- stderr ----\n{done.stderr[-5000:]}"
            )
        return out.read_text(encoding="utf-8")


def installed_r_args(backend):
    """The formals of optimizer_lion in the installed lionr R package."""
    text = run_rscript(
        f"""
f <- getExportedValue({r_string(PACKAGE)}, {r_string(FUNCTION)})
d <- .helpers$describe(as.list(formals(f)))
writeLines(paste(d$name, d$kind, d$value, sep = "\t"), .out_path)
""", backend, timeout=120)
    described = {"name": [], "kind": [], "value": []}
    for line in text.splitlines():
        name, kind, value = line.split("\t", 2)
        described["name"].append(name)
        described["kind"].append(kind)
        described["value"].append(value)
    return _from_r_description(described)
