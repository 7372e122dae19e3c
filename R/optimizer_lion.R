#' The Lion optimizer
#'
#' Makes a Lion optimizer for Keras 3. Lion keeps one momentum `m` per
#' weight `p`. At each step, with gradient `g`:
#'
#' \preformatted{
#' p <- p - learning_rate * (sign(beta_1 * m + (1 - beta_1) * g) + weight_decay * p)
#' m <- beta_2 * m + (1 - beta_2) * g
#' }
#'
#' Since the sign makes every coordinate of the update the same size, Lion
#' usually wants a learning rate 3 to 10 times smaller than AdamW, and a
#' weight decay 3 to 10 times larger. Lion stores one momentum per weight,
#' half the state of Adam.
#'
#' The function only adapts R values for Python and calls the Python
#' function `lionr.optimizer_lion()`, shipped with this package, which
#' checks every argument: `NULL` becomes `None`, a whole number such as `2`
#' is accepted where an integer is needed, an R function becomes a Python
#' callable, and Python objects (tensors, schedules, callables) are passed
#' on as they are. A vector of length other than one, or `NA`, is refused
#' in R, since Python would receive a list or `TRUE` in its place.
#'
#' Every refusal is an R condition of class `lionr_error`, whose message
#' names the argument, shows the value as R prints it (`5`, `"a"`, `NULL`,
#' `list(1)`) and says in R's words what is accepted. After `lionr_error`
#' come the classes reticulate (>= 1.29) gives the Python exception the
#' refusal stands for: `lionr.checks.ArgumentError`,
#' `lionr.checks.Refusal`, `python.builtin.ValueError`,
#' `python.builtin.Exception` and `python.builtin.BaseException` for a
#' value out of range (with `ArgumentTypeError` and
#' `python.builtin.TypeError` for a value of the wrong kind), then `error`
#' and `condition`; so `tryCatch(..., lionr_error = )` and
#' `tryCatch(..., python.builtin.ValueError = )` both catch them. The
#' refusals made in R itself carry `python.builtin.TypeError` (a vector of
#' another length than one, unnamed or repeated arguments in `...`) or
#' `python.builtin.ValueError` (`NA`) and its parents. The field
#' `argument` of the condition names the argument(s) at fault.
#'
#' A function given as `learning_rate`, `beta_1` or `beta_2` must be
#' callable with no arguments: one with a formal argument that has no
#' default, such as `function(step) 0.9`, is refused (a schedule is the
#' form that receives the step). The function is called once when the
#' optimizer is made, and what it returns is checked like a number given
#' directly; if it cannot be called then (it fails, for example because it
#' refers to the optimizer being made), it is called when the optimizer is
#' built, before the first training step. A schedule is checked the same
#' way at step 0. The optimizer then calls the function, with no arguments,
#' whenever it computes a step, and checks each number it returns; its
#' result (one number) reaches Python as a float. When Keras compiles the
#' training step (as `fit()` does with the jax and tensorflow backends), a
#' function returning a plain number is called while the step is compiled,
#' and its value then holds until the step is compiled again; a schedule
#' from `keras$optimizers$schedules` changes at every step.
#'
#' @section Saving:
#' A model compiled with this optimizer saves and loads back
#' (`save_model()` and `load_model()` in keras3; `model$save()` and
#' `keras$models$load_model()` through reticulate) in any R session where
#' lionr is loaded: lionr's Python module, which tells Keras what `"Lion"`
#' is, is imported as soon as keras is.
#'
#' An R function cannot be saved in a form that loads back. When the
#' optimizer holds one as `learning_rate`, `beta_1` or `beta_2`, the saved
#' model holds in its place the value the function returns at save time
#' (as a constant Python callable, `lionr.hyper.Constant`), and saving says
#' so in an R warning of class `lionr_warning` (also `warning` and
#' `condition`; from Python's `lionr.FrozenHyperparameterWarning`) whose
#' field `argument` names the argument, whether the save is called as
#' `save_model()`, `model$save()` or by a checkpoint callback during `fit()`.
#' `withCallingHandlers(..., lionr_warning = )` sees it and
#' `suppressWarnings()` silences it; the save goes on in both cases. The
#' warning made an error (by `options(warn = 2)` or a handler that calls
#' `stop()`) stops the save with an error, and so does an exiting handler
#' such as `tryCatch(..., warning = )`; Keras has emptied the file by then
#' (it opens the file before it reads the optimizer's configuration). Prefer
#' `withCallingHandlers()`: an exiting handler's jump back through Python
#' is reported as a Python `RuntimeError` by reticulate 1.28, and with
#' reticulate 1.46 it leaves Python in a state where a later Python error
#' crashes R. The model loads in a new session and trains on with that
#' value. To save a value
#' that changes, use a schedule from `keras$optimizers$schedules`.
#'
#' @param learning_rate The learning rate: a number >= 0, a Keras
#'   `LearningRateSchedule`, or a function taking no arguments that returns
#'   the rate. Default `0.001`.
#' @param beta_1 How much of the momentum (against the fresh gradient) goes
#'   into the direction whose sign is the update: a number in (0, 1], a
#'   constant scalar float tensor, a schedule, or a function taking no
#'   arguments. Default `0.9`.
#' @param beta_2 The decay rate of the momentum: a number in \[0, 1\], or
#'   any of the other forms allowed for `beta_1`. Default `0.99`.
#' @param weight_decay `NULL` (no decay) or a number >= 0: decoupled weight
#'   decay, `p <- p - learning_rate * weight_decay * p` at each step.
#' @param clipnorm `NULL` or a number > 0: the gradient of each weight is
#'   rescaled so that its norm is at most this value.
#' @param clipvalue `NULL` or a number > 0: each element of each gradient is
#'   clipped to \[-clipvalue, clipvalue\].
#' @param global_clipnorm `NULL` or a number > 0: all gradients together are
#'   rescaled so that their joint norm is at most this value. At most one
#'   of `clipnorm`, `clipvalue` and `global_clipnorm` may be set.
#' @param use_ema `TRUE` or `FALSE` (default): keep an exponential moving
#'   average of the weights, which replaces the weights at the end of
#'   training (or every `ema_overwrite_frequency` steps).
#' @param ema_momentum A number in \[0, 1\], used with `use_ema = TRUE`:
#'   `average <- ema_momentum * average + (1 - ema_momentum) * weight`.
#'   Default `0.99`.
#' @param ema_overwrite_frequency `NULL` or a whole number >= 1, used with
#'   `use_ema = TRUE`: the weights are replaced by their average every this
#'   many steps. With `NULL` they are replaced only by
#'   `optimizer$finalize_variable_values()`, which `fit()` calls after its
#'   last epoch. A fraction such as `2.5` is refused.
#' @param name A non-empty string: the optimizer's name, used as the prefix
#'   of its variables. Default `"lion"`. With `NULL`, Keras names it
#'   `"lion"`, `"lion_1"`, ... in the order they are made.
#' @param ... Further arguments of the Python optimizer, each named, passed
#'   on as they are. Today there are four: `momentum_dtype`, the storage of
#'   the momentum: `"float32"` (default; the momentum is stored in the
#'   weight's dtype, so in bfloat16 under a bfloat16 policy), `"bfloat16"`,
#'   or `"int8"` (blocks of 256 8-bit codes with a float32 scale each; a
#'   tensor of fewer than 4096 elements, such as a bias, keeps its momentum
#'   as `"float32"` does, in float32 for a float32 weight); and
#'   `weight_rounding`, how a new value of a 16-bit float weight (such as
#'   `bfloat16`) is rounded, `"nearest"` (default, as Keras), `"kahan"`
#'   (the rounding error kept in a buffer of the weight's dtype and added
#'   back at the next step) or `"stochastic"` (rounded up or down at random,
#'   unbiased); float32 weights are not affected; and `state_sharding`,
#'   under a Keras distribution whose data (batch) axis has several devices,
#'   `"sharded"` (default: the state of each parameter replicated over that
#'   axis is cut across its devices, and the update exchanged as 2-bit
#'   signs) or `"replicated"` (whole on every device, as Keras does); the
#'   results are the same either way; and `cautious`, `TRUE` or `FALSE`
#'   (default): keep only the coordinates of the update whose sign agrees
#'   with the gradient's, scaled by the tensor's size over the number kept
#'   (no move where none agrees). An unnamed or unknown argument is
#'   refused.
#' @param loss_scale_factor `NULL` or a number > 0: the loss is multiplied
#'   by it before the gradients are computed, and the gradients divided by
#'   it before they are used, which keeps small gradients from underflowing
#'   in mixed precision.
#' @param gradient_accumulation_steps `NULL` or a whole number >= 2: the
#'   weights change only once every this many steps, by the mean of the
#'   gradients gathered since the last change. A fraction such as `2.5` is
#'   refused.
#'
#' @return The Python optimizer (a `lionr.Lion`, which is a
#'   `keras.optimizers.Optimizer`), to give to a Keras model's `compile()`.
#'
#' @references Chen, X., Liang, C., Huang, D., Real, E., Wang, K., Liu, Y.,
#'   Pham, H., Dong, X., Luong, T., Hsieh, C.-J., Lu, Y. and Le, Q. V.
#'   (2023). Symbolic Discovery of Optimization Algorithms.
#'   \doi{10.48550/arXiv.2302.06675}
#'
#' @seealso [install_lionr()] to set up Python for lionr.
#'
#' @examplesIf lionr::lionr_available()
#' opt <- optimizer_lion(learning_rate = 1e-4, beta_2 = function() 0.98)
#' opt$get_config()$learning_rate
#'
#' # A small model and data, both made in Python through reticulate.
#' keras <- reticulate::import("keras")
#' np <- reticulate::import("numpy", convert = FALSE)
#' x <- np$ones(c(8L, 3L), dtype = "float32")
#' y <- np$zeros(c(8L, 1L), dtype = "float32")
#' model <- keras$Sequential(list(keras$Input(shape = list(3L)),
#'                                keras$layers$Dense(1L)))
#' model$compile(optimizer = opt, loss = "mse")
#' history <- model$fit(x, y, epochs = 2L, batch_size = 4L, verbose = 0L)
#' history$history$loss
#'
#' # Refusals are conditions of class "lionr_error", also caught as the
#' # Python exception they stand for.
#' tryCatch(optimizer_lion(beta_1 = 1.5),
#'          lionr_error = function(e) conditionMessage(e))
#' tryCatch(optimizer_lion(beta_1 = function(step) 0.9),
#'          python.builtin.TypeError = function(e) e$argument)
#' @export
optimizer_lion <- function(
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
    ...,
    loss_scale_factor = NULL,
    gradient_accumulation_steps = NULL) {
  call <- sys.call()
  dots <- list(...)
  dot_names <- names(dots)
  if (is.null(dot_names)) dot_names <- rep("", length(dots))
  unnamed <- which(!nzchar(dot_names))
  if (length(unnamed)) {
    lionr_error(python_classes = builtin_exception("TypeError"),
      sprintf(paste(
        "Every argument in `...` must be named; received %d unnamed",
        "(%s). Name each extra argument, for example",
        "momentum_dtype = \"bfloat16\"."),
        length(unnamed),
        paste(vapply(dots[unnamed], shown, ""), collapse = ", ")),
      call = call
    )
  }
  twice <- unique(dot_names[duplicated(dot_names)])
  if (length(twice)) {
    lionr_error(python_classes = builtin_exception("TypeError"),
      sprintf("Each argument may be given once; received %s more than once.",
              paste0("`", twice, "`", collapse = ", ")),
      call = call
    )
  }

  args <- c(
    list(
      learning_rate = learning_rate,
      beta_1 = beta_1,
      beta_2 = beta_2,
      weight_decay = weight_decay,
      clipnorm = clipnorm,
      clipvalue = clipvalue,
      global_clipnorm = global_clipnorm,
      use_ema = use_ema,
      ema_momentum = ema_momentum,
      ema_overwrite_frequency = ema_overwrite_frequency,
      name = name,
      loss_scale_factor = loss_scale_factor,
      gradient_accumulation_steps = gradient_accumulation_steps
    ),
    dots
  )
  given <- args
  for (arg in names(args)) {
    value <- as_python_value(args[[arg]], arg, call)
    if (!is.null(value)) args[[arg]] <- value
  }

  lionr <- python_module()
  for (arg in names(args)) {
    if (is_r_function(given[[arg]])) {
      args[[arg]] <- python_function_from_r(
        with_r_signature(args[[arg]], given[[arg]])
      )
    }
  }
  call_python(lionr$optimizer_lion, args, call = call, given = given)
}

# One argument, made ready for reticulate. NULL stays NULL (None); Python
# objects pass as they are; an R function is wrapped so that, as a Python
# callable, its result is a plain number; one R value loses its attributes (names, dims),
# so that it reaches Python as a scalar. Vectors of another length and NA
# are refused here, since Python would see a list or True.
as_python_value <- function(value, arg, call = NULL) {
  if (is.null(value) || inherits(value, "python.builtin.object")) {
    return(value)
  }
  if (is_r_function(value)) {
    return(python_callable(value))
  }
  if (is.atomic(value)) {
    if (length(value) != 1L) {
      r_refusal(
        argument = arg, type = "TypeError",
        sprintf(paste(
          "`%s` must be one value (one number, TRUE/FALSE or string, as the",
          "argument requires), not a vector of length %d; received %s = %s."),
          arg, length(value), arg, shown(value)),
        call = call
      )
    }
    if (is.na(value) && !is.nan(value)) {
      r_refusal(
        argument = arg,
        sprintf(paste(
          "`%s` must be a value, not NA; received %s = %s. Give a number,",
          "TRUE/FALSE or a string as the argument requires, or NULL where",
          "it may be unset."),
          arg, arg, shown(value)),
        call = call
      )
    }
    return(as.vector(value))
  }
  value
}

# An R function for use as a Python callable taking no arguments
# (reticulate converts it when Python is called); a single number it
# returns reaches Python as a float.
python_callable <- function(fun) {
  force(fun)
  function() {
    value <- fun()
    if (is.numeric(value) && length(value) == 1L && !is.object(value)) {
      value <- as.double(value)
    }
    value
  }
}

# The Python callable for the R function `original` (`wrapped` is what
# python_callable() made of it), with a Python signature that tells what
# `original` takes: each formal becomes a keyword-only parameter, required
# when it has no default, and `...` becomes `*args`. Python's checks then
# judge whether it can be called with no arguments, as for a Python callable.
# (Formal names that are not Python identifiers are made into ones.)
with_r_signature <- function(wrapped, original) {
  inspect <- reticulate::import("inspect", convert = FALSE)
  keyword <- reticulate::import("keyword", convert = TRUE)
  parameter <- inspect$Parameter
  formals <- as.list(formals(original))
  params <- list()
  for (i in seq_along(formals)) {
    name <- names(formals)[[i]]
    if (name == "...") {
      params <- c(list(parameter("r_dots", parameter$VAR_POSITIONAL)), params)
      next
    }
    name <- gsub("[^A-Za-z0-9_]", "_", name)
    if (grepl("^[0-9]", name) || keyword$iskeyword(name)) name <- paste0("_", name)
    required <- is.name(formals[[i]]) && !nzchar(as.character(formals[[i]]))
    params[[length(params) + 1L]] <- if (required) {
      parameter(name, parameter$KEYWORD_ONLY)
    } else {
      parameter(name, parameter$KEYWORD_ONLY, default = NULL)
    }
  }
  callable <- reticulate::r_to_py(wrapped)
  reticulate::py_set_attr(callable, "__signature__", inspect$Signature(params))
  callable
}

is_r_function <- function(value) {
  is.function(value) && !inherits(value, "python.builtin.object")
}
