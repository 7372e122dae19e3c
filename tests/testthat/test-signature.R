test_that("optimizer_lion() has the formals of keras3's optimizer_lion()", {
  expected <- alist(
    learning_rate = 0.001,
    beta_1 = 0.9,
    beta_2 = 0.99,
    weight_decay = NULL,
    clipnorm = NULL,
    clipvalue = NULL,
    global_clipnorm = NULL,
    use_ema = FALSE,
    ema_momentum = 0.99,
    ema_overwrite_frequency = NULL,
    name = "lion",
    ... = ,
    loss_scale_factor = NULL,
    gradient_accumulation_steps = NULL
  )
  expect_identical(as.list(formals(optimizer_lion)), expected)
})

test_that("install_lionr() defaults to the virtualenv r-lionr and jax", {
  f <- formals(install_lionr)
  expect_identical(f$envname, "r-lionr")
  expect_identical(eval(f$backend)[1], "jax")
  expect_setequal(eval(f$backend), c("jax", "tensorflow", "torch"))
})

test_that("loading lionr does not start Python", {
  out <- run_rscript(c(
    "suppressPackageStartupMessages(library(lionr))",
    "invisible(optimizer_lion); invisible(formals(optimizer_lion))",
    "cat('python-started:', reticulate::py_available(), '\\n')"
  ))
  expect_true(any(grepl("python-started: FALSE", out, fixed = TRUE)),
              info = paste(out, collapse = "\n"))
})

test_that("the Python module ships with the installed package", {
  path <- system.file("python", "lionr", "__init__.py", package = "lionr")
  expect_true(nzchar(path) && file.exists(path))
})
