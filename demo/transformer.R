# The trade Lion offers, from R: demo/transformer.py's comparison (AdamW
# against lionr's best setting on a small character-level transformer),
# with the Lion optimizer made by lionr's R optimizer_lion() and handed to
# the Python training loop through reticulate.
#
# Run from the repository root, in an environment where
#   RETICULATE_PYTHON  names the Python that has keras and lionr (.venv),
#   R_LIBS_USER        holds the installed lionr R package (.Rlib),
#   R_LD_LIBRARY_PATH  is /usr/lib/R/lib,
#   KERAS_BACKEND      is jax (the training loop is jax's).
#   Rscript demo/transformer.R [--steps 100] [--output build/demo/transformer_r.png]

source(file.path("demo", "options.R"))  # run from the repository root
options <- demo_options(list(
  steps = 100, output = file.path("build", "demo", "transformer_r.png")
))

suppressPackageStartupMessages({
  library(reticulate)
  library(lionr)
})

keras <- import("keras")
demo <- import_from_path("transformer", path = "demo", convert = FALSE)
setup <- demo$Setup(as.integer(options$steps))

adamw <- keras$optimizers$AdamW(learning_rate = 3e-3, weight_decay = 0.01)
lion <- optimizer_lion(learning_rate = 1e-3, beta_1 = 0.95, beta_2 = 0.98,
                       weight_decay = 0.1, cautious = TRUE,
                       momentum_dtype = "int8")
results <- py_dict(
  c("AdamW", "lionr Lion from R (cautious, betas 0.95/0.98, int8 momentum)"),
  list(setup$run(adamw), setup$run(lion))
)
invisible(demo$report(results, setup, import("pathlib")$Path(options$output)))
