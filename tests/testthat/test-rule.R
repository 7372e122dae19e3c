# The optimizer made from R follows the Lion rule:
#   c = beta_1 * m + (1 - beta_1) * g;  p <- p - lr * (sign(c) + wd * p)
#   m <- beta_2 * m + (1 - beta_2) * g

w0 <- c(0.5, -1.25, 2, 0.125, -0.75, 3)
g1 <- c(0.3, -2, 0, 1e-3, -0.01, 4)

step <- function(opt, h, vars, g) {
  opt$apply(h$tensors(list(g)), vars)
  flat(h$values(vars))
}

test_that("the first step moves each weight by exactly -lr * sign(g)", {
  h <- py_helpers()
  vars <- h$variables(list(w0))
  w1 <- step(optimizer_lion(learning_rate = 0.01), h, vars, g1)
  expect_identical(w1, flat(h$lion_first_step(w0, g1, 0.01)))
  expect_equal(w1 - w0, -0.01 * sign(g1), tolerance = 1e-4)
})

test_that("the momentum decides the second step", {
  h <- py_helpers()
  g2 <- c(-0.2, 0.3, 1, -1, 0.05, -0.1)
  for (betas in list(c(0.9, 0.99), c(0.5, 0.9))) {
    vars <- h$variables(list(w0))
    opt <- optimizer_lion(learning_rate = 0.01, beta_1 = betas[1],
                          beta_2 = betas[2])
    w1 <- step(opt, h, vars, g1)
    w2 <- step(opt, h, vars, g2)
    m1 <- (1 - betas[2]) * g1
    c2 <- betas[1] * m1 + (1 - betas[1]) * g2
    expect_equal(w2 - w1, -0.01 * sign(c2), tolerance = 1e-4)
  }
  # with the default betas, the large first gradient still decides the
  # sign in the last coordinate, against the second gradient
  expect_equal(sign(0.9 * 0.01 * g1[6] + 0.1 * g2[6]), 1)
})

test_that("weight decay is decoupled and scaled by the learning rate", {
  h <- py_helpers()
  vars <- h$variables(list(w0))
  w1 <- step(optimizer_lion(learning_rate = 0.1, weight_decay = 0.5), h, vars, g1)
  expect_equal(w1, w0 - 0.1 * (sign(g1) + 0.5 * w0), tolerance = 1e-4)
})

test_that("an R function is called by the optimizer", {
  h <- py_helpers()
  calls <- 0
  lr <- function() {
    calls <<- calls + 1
    0.02
  }
  vars <- h$variables(list(w0))
  opt <- optimizer_lion(learning_rate = lr, beta_2 = function() 0.5)
  w1 <- step(opt, h, vars, g1)
  expect_gt(calls, 0)
  expect_equal(w1 - w0, -0.02 * sign(g1), tolerance = 1e-4)
})

test_that("a schedule made in Python sets the rate of each step", {
  h <- py_helpers()
  keras <- keras_module()
  schedule <- keras$optimizers$schedules$ExponentialDecay(
    0.05, decay_steps = 1L, decay_rate = 0.5)
  vars <- h$variables(list(w0))
  opt <- optimizer_lion(learning_rate = schedule)
  w1 <- step(opt, h, vars, g1)
  w2 <- step(opt, h, vars, g1)
  expect_equal(w1 - w0, -0.05 * sign(g1), tolerance = 1e-4)
  expect_equal(w2 - w1, -0.025 * sign(g1), tolerance = 1e-4)
})

test_that("a tensor beta is used as a number", {
  h <- py_helpers()
  keras <- keras_module()
  g2 <- c(-0.2, 0.3, 1, -1, 0.05, -0.1)
  vars <- h$variables(list(w0))
  opt <- optimizer_lion(learning_rate = 0.01,
                        beta_1 = keras$ops$convert_to_tensor(0.5),
                        beta_2 = keras$ops$convert_to_tensor(0.9))
  w1 <- step(opt, h, vars, g1)
  w2 <- step(opt, h, vars, g2)
  expect_equal(w2 - w1, -0.01 * sign(0.5 * 0.1 * g1 + 0.5 * g2),
               tolerance = 1e-4)
})

test_that("gradient_accumulation_steps = 2 (a double) waits for two steps", {
  h <- py_helpers()
  vars <- h$variables(list(w0))
  opt <- optimizer_lion(learning_rate = 0.01, gradient_accumulation_steps = 2)
  w1 <- step(opt, h, vars, g1)
  expect_identical(w1, flat(h$values(h$variables(list(w0)))))
  w2 <- step(opt, h, vars, -g1 / 2)
  expect_equal(w2 - w0, -0.01 * sign(g1 / 4), tolerance = 1e-4)
})

test_that("momentum_dtype = \"bfloat16\" trains by the same rule", {
  h <- py_helpers()
  vars <- h$variables(list(w0))
  w1 <- step(optimizer_lion(learning_rate = 0.01, momentum_dtype = "bfloat16"),
             h, vars, g1)
  expect_equal(w1 - w0, -0.01 * sign(g1), tolerance = 1e-4)
})
