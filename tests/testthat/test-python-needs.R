# lionr declares its Python needs with reticulate::py_require() (reticulate
# >= 1.41) in a way that never clashes with keras3's "keras": loading lionr
# after keras3's requirements, before or after Python has started, is
# silent. Run in a fresh R process. Once Python has started in reticulate's
# own (uv) environment, py_require() warns about a requirement whose package
# is required already in another form; starting that environment needs the
# network, so the test starts the configured Python and marks it as
# reticulate marks its own environment (an internal flag of reticulate).

# Runs R code that declares `requirements` (as keras3 or the user would),
# loads lionr (when `before`), starts Python, marks it as reticulate's own
# environment and loads lionr (again); prints what each load said.
load_with_requirements <- function(requirements, before = TRUE) {
  run_rscript(c(
    "report <- function(what, expr) {",
    "  said <- character()",
    "  withCallingHandlers(expr,",
    "    warning = function(w) { said <<- c(said, conditionMessage(w)); invokeRestart('muffleWarning') },",
    "    message = function(m) { said <<- c(said, conditionMessage(m)); invokeRestart('muffleMessage') })",
    "  cat(what, length(said), '\\n'); if (length(said)) cat(said, sep = '\\n')",
    "}",
    sprintf("reticulate::py_require(%s)", deparse(requirements)),
    if (before) "report('before python:', library(lionr))",
    "cat('requirements:', sort(reticulate::py_require()$packages), '\\n')",
    "invisible(reticulate::py_config())",
    "flags <- get('.globals', envir = asNamespace('reticulate'))",
    "flags$py_config$ephemeral <- TRUE",
    "report('after python:', { unloadNamespace('lionr'); library(lionr) })"
  ))
}

test_that("library(lionr) after keras3's requirements is silent, before and after Python starts", {
  skip_if_not(exists("py_require", envir = asNamespace("reticulate"), inherits = FALSE),
              "this reticulate has no py_require() (it came in 1.41)")
  skip_if_no_python()
  # keras3's .onLoad() declares these (among others)
  out <- load_with_requirements(c("keras", "pydot", "scipy"))
  info <- paste(out, collapse = "\n")
  expect_true("before python: 0 " %in% out, info = info)
  expect_true("after python: 0 " %in% out, info = info)
  requirements <- strsplit(grep("^requirements:", out, value = TRUE), " ")[[1]]
  expect_identical(grep("keras", requirements, value = TRUE), "keras")
  # lionr loaded first after Python has started
  out <- load_with_requirements(c("keras", "pydot", "scipy"), before = FALSE)
  expect_true("after python: 0 " %in% out, info = paste(out, collapse = "\n"))

  # keras required in another form (by the user): lionr adds nothing
  out <- load_with_requirements("keras>=3.6", before = FALSE)
  expect_true("after python: 0 " %in% out, info = paste(out, collapse = "\n"))
})
