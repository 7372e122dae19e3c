# A Keras model built through reticulate, with data made on the Python side.

test_that("compile() and fit() take the optimizer; one step moves by lr", {
  h <- py_helpers()
  data <- h$regression_data(32L)
  x <- data[[1]]
  y <- data[[2]]
  model <- h$dense_model(0L)
  before <- h$weights(model)
  grads <- h$gradients(model, x, y)
  model$compile(optimizer = optimizer_lion(learning_rate = 0.01), loss = "mse")
  model$fit(x, y, epochs = 1L, batch_size = 32L, shuffle = FALSE, verbose = 0L)
  after <- h$weights(model)
  for (i in seq_along(before)) {
    expect_equal(flat(after[[i]]) - flat(before[[i]]),
                 -0.01 * sign(flat(grads[[i]])), tolerance = 1e-4)
  }
})

test_that("fit() lowers the loss", {
  h <- py_helpers()
  data <- h$regression_data(64L)
  model <- h$dense_model(1L)
  model$compile(optimizer = optimizer_lion(learning_rate = 0.05), loss = "mse")
  history <- model$fit(data[[1]], data[[2]], epochs = 20L, batch_size = 16L,
                       verbose = 0L)
  loss <- flat(history$history$loss)
  expect_length(loss, 20L)
  expect_lt(loss[20], loss[1] / 2)
})

test_that("an R function as beta_2 works in fit() (the README example)", {
  h <- py_helpers()
  data <- h$regression_data(32L)
  model <- h$dense_model(2L)
  opt <- optimizer_lion(learning_rate = 1e-4, beta_2 = function() 0.98)
  model$compile(optimizer = opt, loss = "mse")
  before <- h$weights(model)
  history <- model$fit(data[[1]], data[[2]], epochs = 2L, batch_size = 8L,
                       verbose = 0L)
  after <- h$weights(model)
  expect_length(flat(history$history$loss), 2L)
  moved <- abs(flat(after) - flat(before))
  expect_true(all(moved > 0))
  expect_true(all(moved <= 8 * 1e-4 + 1e-6))
})

test_that("use_ema with a whole-double frequency trains", {
  h <- py_helpers()
  data <- h$regression_data(32L)
  model <- h$dense_model(3L)
  opt <- optimizer_lion(learning_rate = 0.01, use_ema = TRUE,
                        ema_momentum = 0.9, ema_overwrite_frequency = 2)
  model$compile(optimizer = opt, loss = "mse")
  history <- model$fit(data[[1]], data[[2]], epochs = 2L, batch_size = 8L,
                       verbose = 0L)
  expect_true(all(is.finite(flat(history$history$loss))))
  expect_identical(config(opt)$ema_overwrite_frequency, 2L)
})
