# Finding Python, keras and lionr's Python module.

default_envname <- "r-lionr"

how_to_fix <- paste(
  "To fix this, either run lionr::install_lionr() in a fresh R session",
  "(it makes the virtualenv \"r-lionr\", which lionr then uses), or set",
  "the environment variable RETICULATE_PYTHON to a Python (>= 3.10) that has",
  "keras (>= 3) and a backend, before lionr first calls Python."
)

setup_error <- function(...) {
  lionr_error(paste0(..., " ", how_to_fix), class = "lionr_setup_error")
}

# Where the installed package keeps its copy of lionr's Python module.
shipped_python <- function() {
  path <- system.file("python", package = "lionr")
  if (nzchar(path) && file.exists(file.path(path, "lionr", "__init__.py"))) {
    path
  } else {
    ""
  }
}

# Before Python starts, and only if nothing chose a Python: the virtualenv
# made by install_lionr(), when it exists.
choose_python <- function() {
  if (reticulate::py_available(initialize = FALSE)) return(invisible())
  if (nzchar(Sys.getenv("RETICULATE_PYTHON"))) return(invisible())
  if (reticulate::virtualenv_exists(default_envname)) {
    reticulate::use_virtualenv(default_envname, required = TRUE)
  }
  invisible()
}

backend_text <- function() {
  backend <- Sys.getenv("KERAS_BACKEND")
  if (nzchar(backend)) {
    sprintf("KERAS_BACKEND is \"%s\"", backend)
  } else {
    paste(
      "KERAS_BACKEND is not set, so keras uses the backend named in its",
      "keras.json (\"tensorflow\" unless changed)"
    )
  }
}

python_error_text <- function(e) {
  error <- reticulate::py_last_error()
  if (!is.null(error) && grepl(error$value, conditionMessage(e), fixed = TRUE)) {
    paste0(error$type, ": ", error$value)
  } else {
    trimws(conditionMessage(e))
  }
}

# lionr's Python module, imported on first use: the copy shipped with this
# package, else a `lionr` importable by the Python in use.
python_module <- function() {
  if (!is.null(.state$module)) return(.state$module)

  choose_python()
  if (!reticulate::py_available(initialize = TRUE)) {
    why <- tryCatch(
      {
        reticulate::py_config()
        "it could not be started"
      },
      error = function(e) trimws(conditionMessage(e))
    )
    setup_error("lionr needs Python (>= 3.10), and none could be used: ", why, ".")
  }
  config <- reticulate::py_config()
  if (numeric_version(config$version) < "3.10") {
    setup_error(
      sprintf("lionr needs Python >= 3.10; the Python in use (%s) is %s.",
              config$python, config$version)
    )
  }
  finder <- reticulate::import("importlib.util", convert = TRUE)
  if (is.null(finder$find_spec("keras"))) {
    setup_error(
      sprintf("keras is not installed in the Python in use (%s).", config$python)
    )
  }
  keras <- tryCatch(
    reticulate::import("keras"),
    error = function(e) {
      setup_error(
        sprintf("keras is installed in %s but could not be imported (%s).",
                config$python, python_error_text(e)),
        " Most often its backend is missing: ", backend_text(),
        ", and that backend must be installed in the same Python",
        " (for example install_lionr(backend = \"jax\"))."
      )
    }
  )
  version <- as.character(reticulate::py_get_attr(keras, "__version__"))
  if (numeric_version(version, strict = FALSE) < "3") {
    setup_error(
      sprintf("lionr needs keras >= 3; the Python in use (%s) has keras %s.",
              config$python, version)
    )
  }

  path <- shipped_python()
  module <- tryCatch(
    if (nzchar(path)) {
      reticulate::import_from_path("lionr", path = path)
    } else {
      reticulate::import("lionr")
    },
    error = function(e) {
      setup_error(
        sprintf("lionr's Python module could not be imported in %s (%s).",
                config$python, python_error_text(e))
      )
    }
  )
  module$notices$route(signal_lionr_warning)
  .state$module <- module
  module
}

# An R function (as wrapped by python_callable()) as a Python function that
# carries the mark `lionr_r_function`, so that Python can name it as an R
# function when saving replaces it by its value (lionr/hyper.py).
python_function_from_r <- function(fun) {
  converted <- reticulate::r_to_py(fun)
  reticulate::py_set_attr(converted, "lionr_r_function", TRUE)
  converted
}

#' Is lionr ready to use?
#'
#' Tells whether [optimizer_lion()] can work in this R session: a Python
#' (>= 3.10) can be used, and keras (>= 3), its backend and lionr's Python
#' module can be imported. Unless Python was already running, this starts
#' it, so call it only when Python is wanted.
#'
#' @return `TRUE` or `FALSE`. When `FALSE`, the reason is attached as the
#'   attribute `"reason"`.
#' @examples
#' lionr_available()
#' @export
lionr_available <- function() {
  tryCatch(
    {
      python_module()
      TRUE
    },
    error = function(e) structure(FALSE, reason = conditionMessage(e))
  )
}

#' Make a Python environment for lionr
#'
#' Creates (or updates) a Python virtual environment with keras 3 and a
#' Keras backend, using reticulate's virtualenv tools. lionr's Python module
#' needs no installing: the R package carries its own copy and imports it
#' from there. When the environment has the default name, `"r-lionr"`,
#' lionr uses it by itself in later R sessions where the environment
#' variable `RETICULATE_PYTHON` is not set and nothing else has chosen a
#' Python; otherwise point `RETICULATE_PYTHON` at the Python it returns.
#'
#' Keras reads its backend from the environment variable `KERAS_BACKEND`;
#' set it to the backend installed here (in `~/.Renviron`, for example).
#' For the current session, `install_lionr()` sets it when it is unset.
#' Python can be chosen only once per R session: if Python has already
#' been started, restart R after the installation.
#'
#' @param envname Name of the virtual environment (or a path to it).
#'   The default, `"r-lionr"`, is the one lionr looks for.
#' @param backend The Keras backend to install: `"jax"` (the default),
#'   `"tensorflow"` or `"torch"`. torch is pinned: `torch==2.13.0`.
#' @param python The Python interpreter that makes the environment, or
#'   `NULL` for reticulate's choice. It must be Python 3.10 or newer.
#' @param extra_packages Further Python packages (pip requirement strings)
#'   to install in the same environment, or `NULL`.
#'
#' @return The path of the environment's Python, invisibly.
#' @examples
#' \dontrun{
#' install_lionr()                      # jax backend
#' install_lionr(backend = "torch")     # torch 2.13.0
#' }
#' @export
install_lionr <- function(envname = "r-lionr",
                          backend = c("jax", "tensorflow", "torch"),
                          python = NULL,
                          extra_packages = NULL) {
  backend <- match.arg(backend)
  backend_package <- switch(backend,
    jax = "jax",
    tensorflow = "tensorflow",
    torch = "torch==2.13.0"
  )
  if (!nzchar(shipped_python())) {
    lionr_error(
      "lionr's Python module is missing from the installed R package; reinstall lionr.",
      class = "lionr_setup_error"
    )
  }

  if (!reticulate::virtualenv_exists(envname)) {
    reticulate::virtualenv_create(envname, python = python)
  }
  reticulate::virtualenv_install(
    envname,
    packages = c("keras>=3.6", "numpy>=1.26", backend_package, extra_packages),
    ignore_installed = FALSE
  )

  if (!nzchar(Sys.getenv("KERAS_BACKEND"))) Sys.setenv(KERAS_BACKEND = backend)
  python_path <- reticulate::virtualenv_python(envname)
  message(
    "lionr's Python environment is ready: ", python_path, "\n",
    "Keras backend: ", backend, ". Set KERAS_BACKEND=", backend,
    " for later sessions (for example in ~/.Renviron).\n",
    if (reticulate::py_available(initialize = FALSE)) {
      "Python is already running in this session: restart R to use it.\n"
    }
  )
  invisible(python_path)
}
