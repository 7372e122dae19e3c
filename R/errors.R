# Conditions of class `lionr_error`, and refusals rendered in R's words.
#
# The rules (ranges, accepted kinds) live in Python only: a refusal made
# there (a `lionr.checks.Refusal`) carries the argument, the value and the
# accepted kinds as fields, and R renders those fields. R knows the values
# as the user gave them, so it shows those, as R prints them.

lionr_error <- function(message, class = character(), call = NULL,
                        python_classes = character(), ...) {
  condition <- structure(
    class = c(class, "lionr_error", python_classes, "error", "condition"),
    list(message = message, call = call, ...)
  )
  stop(condition)
}

# Refusals carry, after `lionr_error`, the classes reticulate (>= 1.29) gives
# the Python exception they stand for, so that handlers written for either
# catch them: for a refusal made in Python, its class and its bases in
# method resolution order (`lionr.checks.ArgumentError`,
# `lionr.checks.Refusal`, `python.builtin.ValueError`,
# `python.builtin.Exception`, `python.builtin.BaseException`), read from the
# exception itself. Left out is `python.builtin.object`: an R condition of
# that class would be sent to reticulate's methods for Python objects (for
# `$`, print, length, ...), which fail on an R list (reticulate 1.28 even
# crashes in stop()).
python_condition_classes <- function(classes) {
  setdiff(classes, c("python.builtin.object", "error", "condition"))
}

# R's own refusals stand for the exception Python would raise, a builtin
# ValueError or TypeError, and carry its classes; they come before Python
# starts, so these are written out here.
builtin_exception <- function(type) {
  paste0("python.builtin.", c(type, "Exception", "BaseException"))
}

# reticulate (>= 1.29) has `$` and `[[` methods for
# `python.builtin.BaseException`, meant for real Python exceptions; these
# keep `e$message`, `e$argument`, ... working on lionr's conditions.
#' @export
`$.lionr_error` <- function(x, name) unclass(x)[[name]]

#' @export
`[[.lionr_error` <- function(x, i, ...) unclass(x)[[i]]

# R's own refusal of a value. A vector of another length than one is a
# TypeError in Python's terms (Python would receive a list, which it
# refuses so), NA a ValueError (a value of the right type, but missing).
r_refusal <- function(message, call = NULL, argument = NULL,
                      type = "ValueError") {
  lionr_error(message, call = call, argument = argument,
              python_classes = builtin_exception(type))
}

# A short R rendering of a value, for messages.
shown <- function(value) {
  text <- paste(trimws(deparse(value, width.cutoff = 60L, nlines = 3L)),
                collapse = " ")
  if (nchar(text) > 60L) text <- paste0(substr(text, 1L, 57L), "...")
  text
}

# Calls the Python callable `fun` with the arguments in `args`. A refusal
# from lionr's checks becomes a `lionr_error` rendered in R's words, showing
# the values as given in `given` (the user's R values, by argument name);
# any other Python exception becomes a `lionr_error` carrying Python's own
# message, without the traceback.
call_python <- function(fun, args, call = NULL, given = list()) {
  checks <- python_module()$checks
  outcome <- tryCatch(
    do.call(checks$attempt, c(list(fun), args)),
    error = function(e) {
      if (inherits(e, "lionr_error")) stop(e)
      error <- reticulate::py_last_error()
      message <- conditionMessage(e)
      if (is.null(error) || !nzchar(error$value) ||
          !grepl(error$value, message, fixed = TRUE)) {
        stop(e)
      }
      lionr_error(paste0(error$type, ": ", error$value), call = call,
                  python_type = error$type)
    }
  )
  refusal <- outcome[[2L]]
  if (is.null(refusal)) return(outcome[[1L]])
  fields <- refusal$fields()
  lionr_error(
    refusal_message(fields, given),
    call = call,
    python_classes = python_condition_classes(class(refusal)),
    argument = unlist(fields$arguments),
    python_type = class(refusal)[[1L]]
  )
}

# --------------------------------------------------------------------------
# Rendering a refusal's fields
# --------------------------------------------------------------------------

refusal_message <- function(fields, given) {
  names <- unlist(fields$arguments)
  detail <- if (is.null(fields$detail)) "" else fields$detail
  values <- vapply(seq_along(names), function(i) {
    r_value_text(names[[i]], fields$values[[i]], given,
                 from_r = !detail %in% c("returned", "scheduled"))
  }, "")
  related <- unlist(fields$related)
  if (identical(detail, "only_one")) {
    return(sprintf("Only one of %s may be set; received %s.",
                   r_names(related), paste(names, "=", values, collapse = " and ")))
  }
  if (identical(detail, "unknown")) {
    return(sprintf(paste(
      "Unknown argument(s) %s; optimizer_lion() takes the arguments of its",
      "signature and, in `...`, %s."),
      r_names(names, last = ", "), r_names(related)))
  }
  what <- r_either(vapply(fields$accepted, r_words, ""))
  name <- names[[1L]]
  value <- values[[1L]]
  switch(detail,
    returned = sprintf("`%s` is a function, which must return %s; it returned %s.",
                       name, what, value),
    scheduled = sprintf(paste(
      "`%s` is a LearningRateSchedule, which must give %s; at step 0 it",
      "gave %s."), name, what, value),
    paste0(
      sprintf("`%s` must be %s; received %s = %s", name, what, name, value),
      switch(detail,
        arity = sprintf(", which cannot be called without arguments (it needs %s)",
                        r_names(related)),
        fraction = ", which is not a whole number",
        ""),
      "."
    )
  )
}

# The value of argument `name`: as the user gave it in R, when it is an R
# value; otherwise (a Python object, or what a function returned) from the
# description Python made of it.
r_value_text <- function(name, described, given, from_r) {
  if (from_r && name %in% names(given)) {
    value <- given[[name]]
    if (!inherits(value, "python.builtin.object")) return(shown(value))
  }
  described_text(described)
}

described_text <- function(d) {
  switch(d$kind,
    none = "NULL",
    boolean = if (isTRUE(d$value)) "TRUE" else "FALSE",
    integer = ,
    number = shown(as.double(d$value)),
    string = shown(as.character(d$value)),
    sequence = {
      items <- vapply(d$items, described_text, "")
      kinds <- vapply(d$items, function(i) i$kind, "")
      atomic <- length(items) > 0L && all(kinds %in% c("number", "integer")) ||
        length(unique(kinds)) == 1L && kinds[[1L]] %in% c("string", "boolean")
      paste0(if (atomic) "c(" else "list(", paste(items, collapse = ", "), ")")
    },
    tensor = if (!is.null(d$holds)) {
      sprintf("a %s scalar tensor holding %s", d$dtype,
              shown(if (is.logical(d$holds)) d$holds else as.double(d$holds)))
    } else {
      sprintf("a tensor of shape (%s) and dtype %s",
              paste(unlist(d$shape), collapse = ", "), d$dtype)
    },
    schedule = sprintf("a %s schedule", d$type),
    callable = sprintf("a Python function, %s", d$text),
    sprintf("a Python %s, %s", d$type, d$text)
  )
}

# How R's messages name one accepted kind (a `lionr.checks.Kind`).
r_words <- function(kind) {
  ranged <- kind$low > -Inf || kind$high < Inf
  switch(kind$kind,
    number = if (ranged) paste("a number", r_range(kind)) else "a finite number",
    integer = paste("a whole number >=", format(kind$low)),
    boolean = "TRUE or FALSE",
    string = "a non-empty string",
    none = "NULL",
    schedule = "a Keras LearningRateSchedule",
    callable = "a function taking no arguments",
    tensor = paste("a scalar float tensor", r_range(kind)),
    option = paste("one of",
                   paste0("\"", unlist(kind$options), "\"", collapse = ", ")),
    paste("a", kind$kind)
  )
}

r_range <- function(kind) {
  if (kind$high == Inf) {
    return(paste(if (isTRUE(kind$low_open)) ">" else ">=", format(kind$low)))
  }
  paste0("in ", if (isTRUE(kind$low_open)) "(" else "[", format(kind$low),
         ", ", format(kind$high), if (isTRUE(kind$high_open)) ")" else "]")
}

r_either <- function(words) {
  n <- length(words)
  if (n <= 2L) return(paste(words, collapse = " or "))
  paste0(paste(words[-n], collapse = ", "), ", or ", words[[n]])
}

r_names <- function(names, last = " and ") {
  quoted <- paste0("`", names, "`")
  n <- length(quoted)
  if (n <= 1L || last != " and ") return(paste(quoted, collapse = ", "))
  paste0(paste(quoted[-n], collapse = ", "), " and ", quoted[[n]])
}

# --------------------------------------------------------------------------
# Warnings from Python
# --------------------------------------------------------------------------

# lionr's warnings (a `lionr.notices.LionrWarning`, such as the one saying
# that an R function was saved as its value) as R warnings of class
# `lionr_warning`, carrying the Python warning's fields (`argument`, ...)
# and its class as `python_type`. Python calls this, through
# `lionr.notices.route()`, when it would print the warning; whatever R does
# with the condition (a calling handler, suppressWarnings(), options(warn))
# happens there and then.
signal_lionr_warning <- function(kind, message, fields) {
  condition <- structure(
    class = c("lionr_warning", "warning", "condition"),
    c(list(message = message, call = NULL), fields, list(python_type = kind))
  )
  warning(condition)
  invisible(NULL)
}
