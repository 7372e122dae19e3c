#' lionr: the Lion optimizer for Keras 3
#'
#' lionr provides [optimizer_lion()], the Lion optimizer for Keras 3 models,
#' with the arguments of the keras3 package's function of the same name.
#' The optimizer is written in Python and ships inside this package (folder
#' `python/` of the installed package); the R function hands its arguments
#' to it through reticulate and returns the Python optimizer.
#'
#' Python starts only when [optimizer_lion()] is first called, never when
#' the package is loaded. It needs Python (>= 3.10) with keras (>= 3) and a
#' Keras backend (jax, tensorflow or torch); [install_lionr()] makes such
#' an environment.
#'
#' Every refusal of an argument is signalled as an R condition of class
#' `lionr_error` (also `error` and `condition`) whose message names the
#' argument, shows the value received and says what is accepted.
#'
#' @keywords internal
"_PACKAGE"

# The Python module, once imported (see python_module()).
.state <- new.env(parent = emptyenv())
