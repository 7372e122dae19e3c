# The keras3 user's path: R matrices, keras3's functions, save_model() and
# load_model() in fresh R processes. Runs only where keras3 is installed
# (keras3 needs reticulate >= 1.42, which hands R arrays to NumPy 2).

keras3_prelude <- c(
  "suppressPackageStartupMessages({library(keras3); library(lionr)})",
  "set.seed(1)",
  "x <- matrix(rnorm(48), 16, 3)",
  "y <- x %*% c(1, -2, 0.5)",
  "steps <- function(m) as.integer(m$optimizer$iterations$numpy())"
)

test_that("library(lionr) after library(keras3) masks keras3's optimizer_lion, and not before", {
  skip_if_not_installed("keras3")
  out <- run_rscript(c(
    "suppressPackageStartupMessages({library(keras3); library(lionr)})",
    "cat('lionr first on the path:', identical(optimizer_lion, lionr::optimizer_lion), '\\n')",
    "detach('package:lionr')",
    "suppressPackageStartupMessages(library(lionr, pos = length(search())))",
    "cat('keras3 first on the path:', identical(optimizer_lion, keras3::optimizer_lion), '\\n')"
  ))
  info <- paste(out, collapse = "\n")
  expect_true("lionr first on the path: TRUE " %in% out, info = info)
  expect_true("keras3 first on the path: TRUE " %in% out, info = info)
})

test_that("keras3: fit on R matrices, save_model(), load_model() in a fresh process, fit on", {
  skip_if_not_installed("keras3")
  skip_if_no_python()
  file <- tempfile("lionr-keras3-", fileext = ".keras")
  on.exit(unlink(file), add = TRUE)

  out <- run_rscript(c(
    keras3_prelude,
    "model <- keras_model_sequential(input_shape = 3) |> layer_dense(1)",
    "model |> compile(loss = 'mse', optimizer = optimizer_lion(",
    "  learning_rate = 0.01, beta_2 = function() 0.98))",
    "history <- model |> fit(x, y, epochs = 2, batch_size = 4, verbose = 0)",
    "cat('losses', length(history$metrics$loss), '\\n')",
    sprintf("save_model(model, %s)", deparse(file)),
    "cat('saved', steps(model), '\\n')"
  ))
  info <- paste(out, collapse = "\n")
  expect_true("losses 2 " %in% out, info = info)
  expect_true("saved 8 " %in% out, info = info)
  expect_true(any(grepl("`beta_2` holds an R function", out, fixed = TRUE)),
              info = info)

  out <- run_rscript(c(
    keras3_prelude,
    sprintf("model <- load_model(%s)", deparse(file)),
    "before <- steps(model)",
    "history <- model |> fit(x, y, epochs = 1, batch_size = 4, verbose = 0)",
    "cat('resumed', class(model$optimizer)[1], before, steps(model),",
    "    is.finite(history$metrics$loss), '\\n')"
  ))
  expect_true("resumed lionr.lion.Lion 8 12 TRUE " %in% out,
              info = paste(out, collapse = "\n"))
})
