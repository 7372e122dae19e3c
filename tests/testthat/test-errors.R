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
  expect_match(m, "a whole number >= 2", fixed = TRUE)
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
  expect_refused(optimizer_lion(cautious = "yes"), "cautious")
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
                "ema_momentum")) {
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
  expect_match(m, paste("must be one of \"nearest\", \"kahan\", \"stochastic\";",
                        "received weight_rounding = \"up\"."), fixed = TRUE)
})

test_that("the condition can be caught by its class", {
  skip_if_no_python()
  expect_error(optimizer_lion(beta_1 = 1.5), class = "lionr_error")
  caught <- tryCatch(optimizer_lion(beta_1 = 1.5),
                     lionr_error = function(e) "caught")
  expect_identical(caught, "caught")
  e <- tryCatch(optimizer_lion(beta_1 = 1.5), error = function(e) e)
  expect_match(conditionMessage(e), "received beta_1 = 1.5.", fixed = TRUE)
  expect_match(conditionMessage(e), "(0, 1]", fixed = TRUE)
})

test_that("refusals carry the classes of the Python exception they stand for", {
  skip_if_no_python()
  python_value_error <- c(
    "lionr.checks.ArgumentError", "lionr.checks.Refusal",
    "python.builtin.ValueError", "python.builtin.Exception",
    "python.builtin.BaseException")
  e <- tryCatch(optimizer_lion(beta_1 = 1.5), error = function(e) e)
  expect_identical(class(e),
                   c("lionr_error", python_value_error, "error", "condition"))
  e <- tryCatch(optimizer_lion(use_ema = 1), error = function(e) e)
  expect_identical(class(e), c(
    "lionr_error", "lionr.checks.ArgumentTypeError", "lionr.checks.Refusal",
    "python.builtin.TypeError", "python.builtin.Exception",
    "python.builtin.BaseException", "error", "condition"))

  # handlers written for keras3's (reticulate's) Python errors catch them
  handled <- function(expr) {
    tryCatch(expr,
             python.builtin.ValueError = function(e) "ValueError",
             python.builtin.TypeError = function(e) "TypeError")
  }
  expect_identical(handled(optimizer_lion(beta_2 = 5)), "ValueError")
  expect_identical(handled(optimizer_lion(learning_rate = "a")), "TypeError")
  expect_identical(handled(optimizer_lion(beta_1 = function(step) 0.9)),
                   "TypeError")
  expect_identical(handled(optimizer_lion(beta_1 = function() 1.5)),
                   "ValueError")
  expect_identical(
    tryCatch(optimizer_lion(clipnorm = 1, clipvalue = 1),
             python.builtin.Exception = function(e) "Exception"),
    "Exception")

  # the fields of the condition
  e <- tryCatch(optimizer_lion(clipnorm = 1, clipvalue = 1),
                error = function(e) e)
  expect_identical(e$argument, c("clipnorm", "clipvalue"))
  expect_identical(e[["argument"]], c("clipnorm", "clipvalue"))
  expect_identical(e$message, conditionMessage(e))
})

test_that("R's own refusals carry the classes of a Python TypeError or ValueError", {
  builtin <- function(type) {
    c("lionr_error", paste0("python.builtin.", type),
      "python.builtin.Exception", "python.builtin.BaseException",
      "error", "condition")
  }
  e <- tryCatch(optimizer_lion(beta_1 = c(0.9, 0.99)), error = function(e) e)
  expect_identical(class(e), builtin("TypeError"))
  expect_identical(e$argument, "beta_1")
  e <- tryCatch(optimizer_lion(use_ema = NA), error = function(e) e)
  expect_identical(class(e), builtin("ValueError"))
  e <- tryCatch(optimizer_lion(0.001, 0.9, 0.99, NULL, NULL, NULL, NULL,
                               FALSE, 0.99, NULL, "lion", 3),
                error = function(e) e)
  expect_identical(class(e), builtin("TypeError"))
  expect_identical(
    tryCatch(optimizer_lion(beta_1 = NA),
             python.builtin.ValueError = function(e) "ValueError"),
    "ValueError")
})

test_that("messages speak R: values as R prints them, R's words", {
  skip_if_no_python()
  message_of <- function(expr) {
    conditionMessage(tryCatch(expr, error = function(e) e))
  }
  expect_identical(
    message_of(optimizer_lion(beta_2 = 5)),
    paste("`beta_2` must be a number in [0, 1], a scalar float tensor in",
          "[0, 1], a Keras LearningRateSchedule, or a function taking no",
          "arguments; received beta_2 = 5."))
  expect_identical(
    message_of(optimizer_lion(use_ema = 1)),
    "`use_ema` must be TRUE or FALSE; received use_ema = 1.")
  expect_identical(
    message_of(optimizer_lion(learning_rate = "a")),
    paste("`learning_rate` must be a number >= 0, a Keras",
          "LearningRateSchedule, or a function taking no arguments;",
          "received learning_rate = \"a\"."))
  expect_identical(
    message_of(optimizer_lion(gradient_accumulation_steps = 2.5)),
    paste("`gradient_accumulation_steps` must be a whole number >= 2 or",
          "NULL; received gradient_accumulation_steps = 2.5, which is not",
          "a whole number."))
  expect_identical(
    message_of(optimizer_lion(weight_decay = list(1))),
    "`weight_decay` must be a number >= 0 or NULL; received weight_decay = list(1).")
  expect_identical(
    message_of(optimizer_lion(name = TRUE)),
    "`name` must be a non-empty string or NULL; received name = TRUE.")
  expect_identical(
    message_of(optimizer_lion(momentum_dtype = "fp8")),
    paste("`momentum_dtype` must be one of \"float32\", \"bfloat16\",",
          "\"int8\"; received momentum_dtype = \"fp8\"."))
  expect_identical(
    message_of(optimizer_lion(clipnorm = 1, global_clipnorm = 2)),
    paste("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` may be",
          "set; received clipnorm = 1 and global_clipnorm = 2."))
  for (m in c(message_of(optimizer_lion(learning_rate = NULL)),
              message_of(optimizer_lion(use_ema = "yes")),
              message_of(optimizer_lion(beta_1 = function(x) 1)))) {
    expect_false(grepl("\\b(None|True|False|callable)\\b", m), label = m)
  }
})

test_that("a function that needs arguments is refused, naming the argument", {
  skip_if_no_python()
  m <- expect_refused(optimizer_lion(beta_1 = function(step) 0.9), "beta_1")
  expect_match(m, "received beta_1 = function (step) 0.9, which cannot be",
               fixed = TRUE)
  expect_match(m, "(it needs `step`)", fixed = TRUE)
  m <- expect_refused(optimizer_lion(learning_rate = function(i, j = 1) 0.1),
                      "learning_rate")
  expect_match(m, "(it needs `i`)", fixed = TRUE)
  expect_refused(optimizer_lion(beta_2 = function(..., k) 0.5), "beta_2")
  # one that can be called with no arguments is taken
  expect_s3_class(optimizer_lion(beta_1 = function(...) 0.9), "lionr.lion.Lion")
  expect_s3_class(optimizer_lion(beta_1 = function(x = 2) 0.9 + 0 * x),
                  "lionr.lion.Lion")
})

test_that("what a function returns is checked like a number given directly", {
  skip_if_no_python()
  m <- expect_refused(optimizer_lion(beta_1 = function() 1.5), "beta_1")
  expect_identical(m, paste(
    "`beta_1` is a function, which must return a number in (0, 1] or a",
    "scalar float tensor in (0, 1]; it returned 1.5."))
  m <- expect_refused(optimizer_lion(learning_rate = function() -1),
                      "learning_rate")
  expect_match(m, "it returned -1.", fixed = TRUE)
  m <- expect_refused(optimizer_lion(beta_2 = function() "a"), "beta_2")
  expect_match(m, "it returned \"a\".", fixed = TRUE)
  m <- expect_refused(optimizer_lion(beta_2 = function() c(0.9, 0.99)),
                      "beta_2")
  expect_match(m, "it returned c(0.9, 0.99).", fixed = TRUE)
  m <- expect_refused(optimizer_lion(beta_2 = function() NULL), "beta_2")
  expect_match(m, "it returned NULL.", fixed = TRUE)
  # a schedule is checked at step 0
  keras <- keras_module()
  schedule <- keras$optimizers$schedules$ExponentialDecay(2, 10L, 0.5)
  m <- expect_refused(optimizer_lion(beta_1 = schedule), "beta_1")
  expect_match(m, "at step 0 it gave a float32 scalar tensor holding 2.",
               fixed = TRUE)
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
