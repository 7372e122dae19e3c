# Every refusal is a condition of class lionr_error whose message names the
# argument, without a Python traceback.

expect_refused <- function(expr, names) {
  e <- tryCatch(expr, error = function(e) e)
  expect_s3_class(e, "lionr_error")
  expect_s3_class(e, "error")
  expect_s3_class(e, "condition")
  message <- conditionMessage(e)
  for (name in names) {
    expect_match(message, paste0("`", name, "`"), fixed = TRUE)
  }
  expect_false(grepl("Traceback", message, fixed = TRUE))
  invisible(message)
}

test_that("values out of range are refused by Python, as lionr_error", {
  skip_if_no_python()
  expect_refused(optimizer_lion(beta_1 = 1.5), "beta_1")
  expect_refused(optimizer_lion(beta_1 = 0), "beta_1")
  expect_refused(optimizer_lion(beta_2 = -0.1), "beta_2")
  expect_refused(optimizer_lion(learning_rate = -1), "learning_rate")
  expect_refused(optimizer_lion(ema_momentum = 2), "ema_momentum")
  expect_refused(optimizer_lion(weight_decay = -1), "weight_decay")
  expect_refused(optimizer_lion(clipnorm = 0), "clipnorm")
  expect_refused(optimizer_lion(clipvalue = -1), "clipvalue")
  expect_refused(optimizer_lion(global_clipnorm = Inf), "global_clipnorm")
  expect_refused(optimizer_lion(loss_scale_factor = 0), "loss_scale_factor")
  expect_refused(optimizer_lion(ema_overwrite_frequency = 0),
                 "ema_overwrite_frequency")
  expect_refused(optimizer_lion(gradient_accumulation_steps = 1),
                 "gradient_accumulation_steps")
  expect_refused(optimizer_lion(clipnorm = 1, clipvalue = 1),
                 c("clipnorm", "clipvalue"))
  expect_refused(optimizer_lion(name = ""), "name")
})

test_that("fractions are refused where an integer is needed", {
  skip_if_no_python()
  m <- expect_refused(optimizer_lion(gradient_accumulation_steps = 2.5),
                      "gradient_accumulation_steps")
  expect_match(m, "2.5", fixed = TRUE)
  expect_match(m, "integer", fixed = TRUE)
  expect_refused(optimizer_lion(ema_overwrite_frequency = 2.5),
                 "ema_overwrite_frequency")
})

test_that("values of the wrong kind are refused", {
  skip_if_no_python()
  keras <- keras_module()
  expect_refused(optimizer_lion(beta_2 = "0.9"), "beta_2")
  expect_refused(optimizer_lion(learning_rate = "0.001"), "learning_rate")
  expect_refused(optimizer_lion(use_ema = "yes"), "use_ema")
  expect_refused(optimizer_lion(use_ema = 1), "use_ema")
  expect_refused(optimizer_lion(weight_decay = TRUE), "weight_decay")
  expect_refused(optimizer_lion(name = 3), "name")
  expect_refused(optimizer_lion(learning_rate = list(0.1)), "learning_rate")
  expect_refused(
    optimizer_lion(beta_1 = keras$ops$convert_to_tensor(c(0.9, 0.99))),
    "beta_1")
})

test_that("NULL is refused where a value is required", {
  skip_if_no_python()
  for (arg in c("learning_rate", "beta_1", "beta_2", "use_ema",
                "ema_momentum", "name")) {
    args <- stats::setNames(list(NULL), arg)
    expect_refused(do.call(optimizer_lion, args), arg)
  }
})

test_that("vectors and NA are refused, naming the argument", {
  m <- expect_refused(optimizer_lion(beta_1 = c(0.9, 0.99)), "beta_1")
  expect_match(m, "c(0.9, 0.99)", fixed = TRUE)
  expect_refused(optimizer_lion(learning_rate = numeric()), "learning_rate")
  expect_refused(optimizer_lion(use_ema = c(TRUE, FALSE)), "use_ema")
  m <- expect_refused(optimizer_lion(beta_1 = NA), "beta_1")
  expect_match(m, "NA", fixed = TRUE)
  expect_refused(optimizer_lion(use_ema = NA), "use_ema")
  expect_refused(optimizer_lion(gradient_accumulation_steps = NA),
                 "gradient_accumulation_steps")
  expect_refused(optimizer_lion(ema_overwrite_frequency = NA_real_),
                 "ema_overwrite_frequency")
  expect_refused(optimizer_lion(name = NA_character_), "name")
  skip_if_no_python()
  # NaN is a number: Python refuses it, as it is not finite
  expect_refused(optimizer_lion(beta_1 = NaN), "beta_1")
  expect_refused(optimizer_lion(weight_decay = NaN), "weight_decay")
  expect_refused(optimizer_lion(momentum_dtype = c("float32", "int8")),
                 "momentum_dtype")
})

test_that("arguments in ... must be named, known and given once", {
  m <- tryCatch(optimizer_lion(0.001, 0.9, 0.99, NULL, NULL, NULL, NULL,
                               FALSE, 0.99, NULL, "lion", 3),
                error = function(e) e)
  expect_s3_class(m, "lionr_error")
  expect_match(conditionMessage(m), "must be named", fixed = TRUE)
  expect_refused(
    optimizer_lion(momentum_dtype = "int8", momentum_dtype = "bfloat16"),
    "momentum_dtype")
  skip_if_no_python()
  expect_refused(optimizer_lion(not_an_argument = 1), "not_an_argument")
  expect_refused(optimizer_lion(momentum_dtype = "fp8"), "momentum_dtype")
  m <- expect_refused(optimizer_lion(weight_rounding = "up"), "weight_rounding")
  expect_match(m, "'kahan'", fixed = TRUE)
})

test_that("the condition can be caught by its class", {
  skip_if_no_python()
  expect_error(optimizer_lion(beta_1 = 1.5), class = "lionr_error")
  caught <- tryCatch(optimizer_lion(beta_1 = 1.5),
                     lionr_error = function(e) "caught")
  expect_identical(caught, "caught")
  e <- tryCatch(optimizer_lion(beta_1 = 1.5), error = function(e) e)
  expect_match(conditionMessage(e), "received beta_1=1.5", fixed = TRUE)
  expect_match(conditionMessage(e), "(0, 1]", fixed = TRUE)
})

test_that("a missing Python or backend says how to fix it", {
  skip_on_os("windows")
  out <- run_rscript(
    c("e <- tryCatch(lionr::optimizer_lion(), error = function(e) e)",
      "cat('class:', class(e), '\\n')",
      "cat('message:', conditionMessage(e), '\\n')"),
    env = c("RETICULATE_PYTHON=/nonexistent/bin/python",
            "RETICULATE_PYTHON_ENV=", "WORKON_HOME=/nonexistent")
  )
  text <- paste(out, collapse = "\n")
  expect_match(text, "class: lionr_setup_error lionr_error error condition",
               fixed = TRUE)
  expect_match(text, "install_lionr()", fixed = TRUE)
  expect_match(text, "RETICULATE_PYTHON", fixed = TRUE)

  skip_if_no_python()
  python <- reticulate::py_config()$python
  out <- run_rscript(
    c("e <- tryCatch(lionr::optimizer_lion(), error = function(e) e)",
      "cat('class:', class(e), '\\n')",
      "cat('message:', conditionMessage(e), '\\n')"),
    env = c(paste0("RETICULATE_PYTHON=", python),
            "KERAS_BACKEND=no_such_backend")
  )
  text <- paste(out, collapse = "\n")
  expect_match(text, "class: lionr_setup_error lionr_error error condition",
               fixed = TRUE)
  expect_match(text, "KERAS_BACKEND is \"no_such_backend\"", fixed = TRUE)
  expect_match(text, "install_lionr(", fixed = TRUE)
})
