# Shared by the tests: skipping when Python is missing, and the Python-side
# helpers (tests/testthat/lionr_test_helpers.py).

skip_if_no_python <- function() {
  ok <- lionr_available()
  if (isTRUE(ok)) return(invisible(TRUE))
  reason <- paste("lionr cannot use Python:", attr(ok, "reason"))
  if (identical(Sys.getenv("LIONR_REQUIRE_PYTHON"), "1")) {
    stop(reason, " (LIONR_REQUIRE_PYTHON=1, so this is an error)")
  }
  testthat::skip(reason)
}

py_helpers <- function() {
  skip_if_no_python()
  reticulate::import_from_path("lionr_test_helpers",
                               path = testthat::test_path())
}

keras_module <- function() {
  skip_if_no_python()
  reticulate::import("keras")
}

config <- function(optimizer) optimizer$get_config()

flat <- function(x) as.numeric(unlist(x))

# Runs R code in a fresh Rscript with some environment variables changed,
# for at most `timeout` seconds; returns its output lines (stdout and
# stderr), with the exit status as attribute "status" when not 0.
run_rscript <- function(code, env = character(), timeout = 300) {
  rscript <- file.path(R.home("bin"), "Rscript")
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(c(
    sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")),
    code
  ), script)
  suppressWarnings(system2(rscript, c("--vanilla", shQuote(script)),
                           stdout = TRUE, stderr = TRUE, env = env,
                           timeout = timeout))
}

# The start of a script for run_rscript() that saves or loads models:
# lionr, keras through reticulate, data made on the Python side (reticulate
# before 1.41 cannot hand R arrays to NumPy 2).
saving_prelude <- c(
  "suppressPackageStartupMessages(library(lionr))",
  "keras <- reticulate::import('keras')",
  "np <- reticulate::import('numpy', convert = FALSE)",
  "x <- np$reshape(np$linspace(-1, 1, 48L, dtype = 'float32'), c(16L, 3L))",
  "y <- np$reshape(np$linspace(1, -1, 16L, dtype = 'float32'), c(16L, 1L))",
  "steps <- function(m) reticulate::import_builtins()$int(m$optimizer$iterations)"
)
