# The cycle "train, save, quit, come back, load, train on", each half in a
# fresh R process: the loading process runs only library(lionr) before
# keras$models$load_model(). Data are made on the Python side (reticulate
# before 1.41 cannot hand R arrays to NumPy 2; see saving_prelude in
# helper-lionr.R).

# name = R code making the optimizer
saved_optimizers <- c(
  floats = "optimizer_lion(learning_rate = 0.01, beta_1 = 0.8, beta_2 = 0.95)",
  tensor_schedule = paste(
    "optimizer_lion(learning_rate = keras$optimizers$schedules$ExponentialDecay(",
    "0.01, decay_steps = 4L, decay_rate = 0.5),",
    "beta_1 = keras$ops$convert_to_tensor(0.85, 'float32'))"),
  r_function = "optimizer_lion(learning_rate = 0.01, beta_1 = function() 0.75)"
)

test_that("models saved in one R process load and train on after library(lionr) in another", {
  skip_if_no_python()
  dir <- tempfile("lionr-saving-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  path <- function(name) file.path(dir, paste0(name, ".keras"))

  save_code <- saving_prelude
  for (name in names(saved_optimizers)) {
    save_code <- c(save_code, sprintf(paste(
      "m <- keras$Sequential(list(keras$Input(shape = list(3L)), keras$layers$Dense(1L)))",
      "m$compile(optimizer = %s, loss = 'mse')",
      "m$fit(x, y, epochs = 2L, batch_size = 4L, shuffle = FALSE, verbose = 0L)",
      "m$save(%s)",
      "cat('saved', %s, steps(m), '\\n')", sep = "\n"),
      saved_optimizers[[name]], deparse(path(name)), deparse(name)))
  }
  out <- run_rscript(save_code)
  saved <- grep("^saved ", out, value = TRUE)
  expect_identical(saved, paste("saved", names(saved_optimizers), "8 "),
                   info = paste(out, collapse = "\n"))
  # the R function's value replaces it in the file, and an R warning says so
  # (test-warnings.R tests the condition)
  warned <- grep("holds an R function", out, value = TRUE)
  expect_length(warned, 1L)
  expect_match(warned, "`beta_1` holds an R function", fixed = TRUE)
  expect_match(warned, "holds 0.75, the value it returns now", fixed = TRUE)

  load_code <- saving_prelude
  for (name in names(saved_optimizers)) {
    load_code <- c(load_code, sprintf(paste(
      "m <- keras$models$load_model(%s)",
      "before <- steps(m)",
      "m$fit(x, y, epochs = 1L, batch_size = 4L, shuffle = FALSE, verbose = 0L)",
      "cat('loaded', %s, class(m$optimizer)[1], before, steps(m),",
      "    reticulate::import_builtins()$str(m$optimizer$beta_1), '\\n')", sep = "\n"),
      deparse(path(name)), deparse(name)))
  }
  # only library(lionr) before loading: no optimizer_lion(), no lionr_available()
  load_code <- c(
    "suppressPackageStartupMessages(library(lionr))",
    "cat('python before loading:', reticulate::py_available(), '\\n')",
    load_code[-1]
  )
  out <- run_rscript(load_code)
  info <- paste(out, collapse = "\n")
  expect_true("python before loading: FALSE " %in% out, info = info)
  loaded <- grep("^loaded ", out, value = TRUE)
  expect_length(loaded, 3L)
  expect_match(loaded[1], "^loaded floats lionr.lion.Lion 8 12 0.8 $", info = info)
  expect_match(loaded[2], "^loaded tensor_schedule lionr.lion.Lion 8 12 .*0.85",
               info = info)
  expect_match(loaded[3], "^loaded r_function lionr.lion.Lion 8 12 Constant\\(0.75\\) $",
               info = info)

  # keras imported before lionr's namespace is loaded (not attached)
  out <- run_rscript(c(
    "keras <- reticulate::import('keras')",
    "invisible(loadNamespace('lionr'))",
    sprintf("m <- keras$models$load_model(%s)", deparse(path("floats"))),
    "cat('loaded', class(m$optimizer)[1], '\\n')"
  ))
  expect_true("loaded lionr.lion.Lion " %in% out, info = paste(out, collapse = "\n"))
})
