# Smoke check of the installed R source package (run by ./dev dist).
#
# Usage: Rscript --vanilla tools/dist-smoke.R VERSION LIBRARY, with
# RETICULATE_PYTHON set to the fresh virtual environment's Python. Checks
# that lionr is loaded from LIBRARY with the expected version, that news()
# reads its NEWS.md, that optimizer_lion() returns a Keras optimizer from the
# Python lionr shipped inside the R package, and that a refusal comes back as
# a lionr_error.
args <- commandArgs(trailingOnly = TRUE)
expected <- args[[1]]
library_dir <- normalizePath(args[[2]])
.libPaths(c(library_dir, .libPaths()))

library(lionr)
where <- normalizePath(find.package("lionr"))
stopifnot(identical(dirname(where), library_dir))
stopifnot(identical(as.character(packageVersion("lionr")), expected))

news <- utils::news(package = "lionr")
stopifnot(!is.null(news), expected %in% news$Version)

ok <- lionr_available()
if (!isTRUE(ok)) stop("lionr_available(): ", attr(ok, "reason"))
sys <- reticulate::import("sys", convert = FALSE)
prefix <- reticulate::import_builtins()$str(sys$prefix)
stopifnot(identical(prefix, dirname(dirname(Sys.getenv("RETICULATE_PYTHON")))))

opt <- optimizer_lion(learning_rate = 0.01, beta_2 = 0.98)
stopifnot(inherits(opt, "keras.src.optimizers.optimizer.Optimizer"))
config <- opt$get_config()
stopifnot(isTRUE(all.equal(config$beta_2, 0.98)), identical(config$name, "lion"))
module <- reticulate::py_to_r(reticulate::py_get_attr(
  reticulate::py_get_item(sys$modules, "lionr"), "__file__"))
module <- normalizePath(module)
stopifnot(startsWith(module, normalizePath(file.path(where, "python"))))

refused <- tryCatch(optimizer_lion(beta_2 = 5), lionr_error = function(e) e)
stopifnot(inherits(refused, "lionr_error"))

cat(sprintf("lionr %s from %s; optimizer_lion() gave %s from %s (Python in %s); news() has %d entries\n",
            expected, where, class(opt)[[1]], dirname(module), prefix, nrow(news)))
