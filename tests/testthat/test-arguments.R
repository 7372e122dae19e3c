# Every argument, in every form a value may take, reaches Python.

test_that("the defaults make a lionr.Lion, a Keras optimizer", {
  skip_if_no_python()
  opt <- optimizer_lion()
  expect_s3_class(opt, "lionr.lion.Lion")
  expect_s3_class(opt, "keras.src.optimizers.optimizer.Optimizer")
  cfg <- config(opt)
  expect_equal(cfg$learning_rate, 0.001, tolerance = 1e-7)
  expect_identical(cfg$beta_1, 0.9)
  expect_identical(cfg$beta_2, 0.99)
  expect_null(cfg$weight_decay)
  expect_null(cfg$clipnorm)
  expect_null(cfg$clipvalue)
  expect_null(cfg$global_clipnorm)
  expect_false(cfg$use_ema)
  expect_identical(cfg$ema_momentum, 0.99)
  expect_null(cfg$ema_overwrite_frequency)
  expect_identical(cfg$name, "lion")
  expect_null(cfg$loss_scale_factor)
  expect_null(cfg$gradient_accumulation_steps)
  expect_identical(cfg$momentum_dtype, "float32")
})

test_that("doubles are passed by name and by position", {
  skip_if_no_python()
  cfg <- config(optimizer_lion(0.01, 0.8, 0.95, 0.1, 1.5))
  expect_equal(cfg$learning_rate, 0.01, tolerance = 1e-7)
  expect_identical(cfg$beta_1, 0.8)
  expect_identical(cfg$beta_2, 0.95)
  expect_equal(cfg$weight_decay, 0.1)
  expect_equal(cfg$clipnorm, 1.5)

  cfg <- config(optimizer_lion(
    learning_rate = 0.2, weight_decay = 0.5, clipvalue = 0.1,
    ema_momentum = 0.5, loss_scale_factor = 4
  ))
  expect_equal(cfg$learning_rate, 0.2, tolerance = 1e-7)
  expect_equal(cfg$weight_decay, 0.5)
  expect_equal(cfg$clipvalue, 0.1)
  expect_equal(cfg$ema_momentum, 0.5)
  expect_equal(cfg$loss_scale_factor, 4)
  expect_equal(config(optimizer_lion(global_clipnorm = 0.3))$global_clipnorm, 0.3)
  expect_identical(config(optimizer_lion(beta_1 = 1, beta_2 = 0))$beta_1, 1)
})

test_that("whole doubles and R integers are integers in Python", {
  skip_if_no_python()
  cfg <- config(optimizer_lion(use_ema = TRUE, ema_overwrite_frequency = 2,
                               gradient_accumulation_steps = 3))
  expect_identical(cfg$ema_overwrite_frequency, 2L)
  expect_identical(cfg$gradient_accumulation_steps, 3L)
  cfg <- config(optimizer_lion(use_ema = TRUE, ema_overwrite_frequency = 5L,
                               gradient_accumulation_steps = 2L))
  expect_identical(cfg$ema_overwrite_frequency, 5L)
  expect_identical(cfg$gradient_accumulation_steps, 2L)
})

test_that("NULL, TRUE and FALSE are None, True and False", {
  skip_if_no_python()
  cfg <- config(optimizer_lion(
    weight_decay = NULL, clipnorm = NULL, clipvalue = NULL,
    global_clipnorm = NULL, use_ema = FALSE, ema_overwrite_frequency = NULL,
    loss_scale_factor = NULL, gradient_accumulation_steps = NULL
  ))
  for (arg in c("weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
                "ema_overwrite_frequency", "loss_scale_factor",
                "gradient_accumulation_steps")) {
    expect_null(cfg[[arg]], label = arg)
  }
  expect_false(cfg$use_ema)
  expect_true(config(optimizer_lion(use_ema = TRUE))$use_ema)
})

test_that("a string names the optimizer; NULL lets Keras name it", {
  skip_if_no_python()
  expect_identical(config(optimizer_lion(name = "my_lion"))$name, "my_lion")
  first <- optimizer_lion(name = NULL)$name
  second <- optimizer_lion(name = NULL)$name
  expect_match(first, "^lion(_[0-9]+)?$")
  expect_match(second, "^lion_[0-9]+$")
  expect_false(identical(first, second))
})

test_that("a named argument in ... is forwarded", {
  skip_if_no_python()
  opt <- optimizer_lion(momentum_dtype = "bfloat16")
  expect_identical(config(opt)$momentum_dtype, "bfloat16")
  expect_identical(
    config(optimizer_lion(0.01, momentum_dtype = "int8"))$momentum_dtype,
    "int8"
  )
  expect_identical(config(optimizer_lion())$weight_rounding, "nearest")
  expect_identical(
    config(optimizer_lion(weight_rounding = "kahan"))$weight_rounding, "kahan")
  expect_false(config(optimizer_lion())$cautious)
  expect_true(config(optimizer_lion(cautious = TRUE))$cautious)
})

test_that("tensors and schedules made in Python are passed as they are", {
  skip_if_no_python()
  keras <- keras_module()
  b1 <- keras$ops$convert_to_tensor(0.8)
  b2 <- keras$ops$convert_to_tensor(0.95)
  opt <- optimizer_lion(beta_1 = b1, beta_2 = b2)
  builtins <- reticulate::import_builtins()
  expect_true(builtins$id(opt$beta_1) == builtins$id(b1))

  schedule <- keras$optimizers$schedules$ExponentialDecay(
    0.05, decay_steps = 1L, decay_rate = 0.5)
  opt <- optimizer_lion(learning_rate = schedule, beta_1 = schedule)
  expect_s3_class(opt$beta_1,
                  "keras.src.optimizers.schedules.learning_rate_schedule.ExponentialDecay")
  expect_identical(config(opt)$learning_rate$class_name, "ExponentialDecay")
})

test_that("R functions become Python callables returning floats", {
  skip_if_no_python()
  h <- py_helpers()
  opt <- optimizer_lion(learning_rate = function() 0.03,
                        beta_1 = function() 0.8,
                        beta_2 = function() 0.9)
  for (arg in c("beta_1", "beta_2")) {
    value <- reticulate::py_get_attr(opt, arg)
    expect_s3_class(value, "python.builtin.object")
    expect_identical(h$result_type(value), "float")
  }
  expect_identical(h$result_type(opt$`_learning_rate`), "float")

  # an R integer, or a number with names, still arrives as one float
  opt <- optimizer_lion(beta_1 = function() 1L,
                        beta_2 = function() c(rate = 0.5))
  expect_identical(h$result_type(opt$beta_1), "float")
  expect_identical(h$result_type(opt$beta_2), "float")
})
