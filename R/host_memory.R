#' Keep freed memory in this process for reuse
#'
#' On the CPU, every training step of jax, tensorflow and torch takes its
#' temporary buffers (gradients, intermediate values) from the C library
#' and frees them when the step ends. By default glibc hands large blocks
#' back to the system, so the next step has the system zero-fill fresh
#' pages again, which can cost more than the optimizer's own work. After
#' `retain_host_memory()`, glibc (on Linux) keeps freed memory and reuses
#' it.
#'
#' The setting is for the whole process and lasts until it ends: R's own
#' memory is then not given back to the system either (the process keeps
#' its peak size), and it cannot be undone. Call it once and early, before
#' the first training step: threads that start after it share one heap, and
#' the backend starts its threads when it first computes. It starts Python.
#' The README's section "Inside fit" has measurements.
#'
#' @return `TRUE` when the setting is in effect, `FALSE` where it is not
#'   available (a C library other than glibc), invisibly.
#' @examples
#' \dontrun{
#' retain_host_memory()
#' }
#' @export
retain_host_memory <- function() {
  invisible(isTRUE(python_module()$retain_host_memory()))
}
