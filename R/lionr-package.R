#' lionr: the Lion optimizer for Keras 3
#'
#' lionr provides [optimizer_lion()], the Lion optimizer for Keras 3 models,
#' with the arguments of the keras3 package's function of the same name.
#' The optimizer is written in Python and ships inside this package (folder
#' `python/` of the installed package); the R function hands its arguments
#' to it through reticulate and returns the Python optimizer.
#'
#' Loading the package never starts Python. Python starts when
#' [optimizer_lion()] is first called, or when something else starts it
#' (keras3, reticulate). Whoever imports keras into Python, lionr's Python
#' module is imported right after it, so that a model saved with lionr's
#' optimizer loads (`keras3::load_model()`, `keras$models$load_model()`) in
#' any R session where lionr is loaded. lionr needs Python (>= 3.10) with
#' keras (>= 3) and a Keras backend (jax, tensorflow or torch). With
#' reticulate >= 1.41 it declares `"keras"` (the requirement keras3
#' declares too, so that loading both, in either order, before or after
#' Python has started, is silent) through `reticulate::py_require()` when it
#' loads (the backend is left to the user or to keras3); with older
#' reticulate, [install_lionr()] makes such an environment.
#'
#' Every refusal of an argument is signalled as an R condition of class
#' `lionr_error` (also `error` and `condition`) whose message names the
#' argument, shows the value received and says what is accepted.
#'
#' @keywords internal
"_PACKAGE"

# The Python module, once imported (see python_module()).
.state <- new.env(parent = emptyenv())

.onLoad <- function(libname, pkgname) {
  declare_python_needs()
  import_with_keras()
}

# reticulate >= 1.41 resolves a package's Python needs from py_require()
# calls made when it loads (keras3 declares its own and a backend). lionr
# asks for "keras", the very string keras3 asks for (keras pulls in numpy),
# so that the two never clash: once Python runs in reticulate's own
# environment, py_require() accepts only requirements already there or
# whose package is not named there yet, and warns otherwise. For the same
# reason, nothing is asked once Python runs and keras is named already (by
# keras3 or by the user, in whatever form). py_require() is looked up in
# the namespace, so that older reticulate, which lacks it, is fine; a
# keras older than 3 is reported when Python is first used.
python_needs <- "keras"

declare_python_needs <- function() {
  reticulate <- asNamespace("reticulate")
  if (!exists("py_require", envir = reticulate, inherits = FALSE)) {
    return(invisible())
  }
  py_require <- get("py_require", envir = reticulate)
  needs <- python_needs
  if (reticulate::py_available(initialize = FALSE)) {
    named <- requirement_names(py_require()$packages)
    needs <- needs[!requirement_names(needs) %in% named]
  }
  if (length(needs)) py_require(needs)
  invisible()
}

# The package each requirement string names ("keras>=3" -> "keras").
requirement_names <- function(requirements) {
  tolower(trimws(sub("[[<>=!~;@ ].*$", "", requirements)))
}

# A saved model names lionr's optimizer "lionr>Lion", which Keras finds only
# once lionr's Python module has been imported. reticulate runs the R hooks
# named "reticulate::<module>::load" right after Python imports <module>, so
# lionr's module follows keras into Python, whoever imports keras (keras3,
# reticulate::import("keras"), lionr itself), and loading lionr never starts
# Python. Where keras is already in Python, the module is imported now.
import_with_keras <- function() {
  if (reticulate::py_available(initialize = FALSE) &&
      isTRUE(reticulate::py_eval("'keras' in __import__('sys').modules"))) {
    import_quietly()
  } else {
    setHook("reticulate::keras::load", import_quietly)
  }
  invisible()
}

# A failure here is not the user's concern yet: optimizer_lion() and
# lionr_available() report it when they are called.
import_quietly <- function() {
  tryCatch(python_module(), error = function(e) NULL)
  invisible()
}
