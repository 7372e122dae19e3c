# Conditions of class `lionr_error`.

lionr_error <- function(message, class = character(), call = NULL, ...) {
  condition <- structure(
    class = c(class, "lionr_error", "error", "condition"),
    list(message = message, call = call, ...)
  )
  stop(condition)
}

# A short R rendering of a value, for messages.
shown <- function(value) {
  text <- paste(deparse(value, width.cutoff = 60L, nlines = 2L), collapse = " ")
  if (nchar(text) > 60L) text <- paste0(substr(text, 1L, 57L), "...")
  text
}

# Calls `fun(...)` (a Python callable) with the arguments in `args`; a Python
# exception becomes a `lionr_error` carrying Python's own message, without
# the traceback.
call_python <- function(fun, args, call = NULL) {
  tryCatch(
    do.call(fun, args),
    error = function(e) {
      if (inherits(e, "lionr_error")) stop(e)
      error <- reticulate::py_last_error()
      message <- conditionMessage(e)
      if (is.null(error) || !nzchar(error$value) ||
          !grepl(error$value, message, fixed = TRUE)) {
        stop(e)
      }
      text <- error$value
      if (!error$type %in% c("ArgumentError", "ArgumentTypeError")) {
        text <- paste0(error$type, ": ", text)
      }
      lionr_error(text, call = call, python_type = error$type)
    }
  )
}
