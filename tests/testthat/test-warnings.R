# The notice that an R function was saved as its value reaches R as a
# warning of class `lionr_warning`, wherever the save is called from R. Run
# in a fresh R process, so that what Python would print on its own is seen
# too; keras is imported through reticulate (no keras3 needed).

test_that("saving an R function's value signals a `lionr_warning` naming the argument", {
  skip_if_no_python()
  code <- c(
    saving_prelude,
    "m <- keras$Sequential(list(keras$Input(shape = list(3L)), keras$layers$Dense(1L)))",
    "m$compile(optimizer = optimizer_lion(beta_2 = function() 0.9), loss = 'mse')",
    "path <- tempfile(fileext = '.keras')",
    "caught <- list()",
    "keep <- function(w) { caught[[length(caught) + 1L]] <<- w; invokeRestart('muffleWarning') }",
    "report <- function(how) {",
    "  cat(how, length(caught), vapply(caught, function(w) paste(",
    "    paste(class(w), collapse = '/'), w$argument, grepl('`beta_2` holds an R function',",
    "    conditionMessage(w), fixed = TRUE)), ''), '\\n', sep = ' ')",
    "  caught <<- list()",
    "}",
    "withCallingHandlers(m$save(path), lionr_warning = keep)",
    "report('model$save')",
    "withCallingHandlers(keras$saving$save_model(m, path), warning = keep)",
    "report('save_model')",
    "checkpoint <- keras$callbacks$ModelCheckpoint(tempfile(fileext = '.keras'))",
    "withCallingHandlers(m$fit(x, y, epochs = 2L, batch_size = 8L, verbose = 0L,",
    "                         callbacks = list(checkpoint)), warning = keep)",
    "report('checkpoint')",
    "suppressWarnings(m$save(path))",
    "cat('after suppressWarnings\\n')",
    "loaded <- keras$models$load_model(path)",
    "cat('loaded', reticulate::import_builtins()$str(loaded$optimizer$beta_2), '\\n')"
  )
  out <- run_rscript(code)
  info <- paste(out, collapse = "\n")
  each <- "lionr_warning/warning/condition beta_2 TRUE"
  expect_true(paste("model$save 1", each, "") %in% out, info = info)
  expect_true(paste("save_model 1", each, "") %in% out, info = info)
  expect_true(paste("checkpoint 2", each, each, "") %in% out, info = info)
  expect_true("loaded Constant(0.9) " %in% out, info = info)
  # caught or suppressed in R, the notice is printed nowhere
  expect_false(any(grepl("holds an R function|FrozenHyperparameterWarning", out)),
               info = info)
})

test_that("an uncaught `lionr_warning` is printed by R as a warning", {
  skip_if_no_python()
  out <- run_rscript(c(
    saving_prelude,
    "m <- keras$Sequential(list(keras$Input(shape = list(3L)), keras$layers$Dense(1L)))",
    "m$compile(optimizer = optimizer_lion(learning_rate = function() 0.01), loss = 'mse')",
    "m$save(tempfile(fileext = '.keras'))",
    "cat('saved\\n')"
  ))
  info <- paste(out, collapse = "\n")
  at <- match("Warning message:", out)
  expect_false(is.na(at), info = info)
  expect_match(out[at + 1L], "^`learning_rate` holds an R function, .* holds 0.01,", info = info)
  expect_false(any(grepl("FrozenHyperparameterWarning", out)), info = info)
})

test_that("keras3: save_model() and callback_model_checkpoint() signal the `lionr_warning`", {
  skip_if_not_installed("keras3")
  skip_if_no_python()
  out <- run_rscript(c(
    "suppressPackageStartupMessages({library(keras3); library(lionr)})",
    "x <- matrix(seq(-1, 1, length.out = 48), 16, 3)",
    "y <- x %*% c(1, -2, 0.5)",
    "model <- keras_model_sequential(input_shape = 3) |> layer_dense(1)",
    "model |> compile(loss = 'mse', optimizer = optimizer_lion(beta_1 = function() 0.85))",
    "arguments <- character()",
    "keep <- function(w) { arguments <<- c(arguments, w$argument); invokeRestart('muffleWarning') }",
    "withCallingHandlers(save_model(model, tempfile(fileext = '.keras')), lionr_warning = keep)",
    "checkpoint <- callback_model_checkpoint(tempfile(fileext = '.keras'))",
    "withCallingHandlers(fit(model, x, y, epochs = 2, verbose = 0, callbacks = list(checkpoint)),",
    "                    lionr_warning = keep)",
    "cat('caught:', arguments, '\\n')"
  ))
  info <- paste(out, collapse = "\n")
  expect_true("caught: beta_1 beta_1 beta_1 " %in% out, info = info)
  expect_false(any(grepl("holds an R function", out)), info = info)
})
