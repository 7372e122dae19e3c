# Lion from R: the digits classifier of demo/demo.py, trained with lionr's
# optimizer_lion() called from R through reticulate.
#
# Run by demo/demo.py (./dev demo) with Rscript, in an environment where
#   RETICULATE_PYTHON  names the Python that has keras and lionr (.venv),
#   R_LIBS_USER        holds the installed lionr R package (.Rlib),
#   R_LD_LIBRARY_PATH  is /usr/lib/R/lib (so that Python's own libpython loads),
#   KERAS_BACKEND      is jax, tensorflow or torch (read once, at import).
# It can also be run alone:
#   Rscript demo/demo.R --epochs 30 --out build/demo/history_r.csv
#
# The data stay on the Python side: reticulate 1.28 cannot hand R arrays to
# NumPy 2, so the arrays are made by scikit-learn and NumPy, reached with
# convert = FALSE, and given to fit() as Python objects.

source(file.path("demo", "options.R"))  # run from the repository root
options <- demo_options(list(
  epochs = 30, batch_size = 64, seed = 42, lr = 3e-4, wd = 0.1, verbose = 1,
  out = file.path("build", "demo", "history_r.csv")
))

suppressPackageStartupMessages({
  library(reticulate)
  library(lionr)
})

keras <- import("keras")
np <- import("numpy", convert = FALSE)
datasets <- import("sklearn.datasets", convert = FALSE)
model_selection <- import("sklearn.model_selection", convert = FALSE)

# The same data and split as demo.py: pixels scaled to [0, 1], stratified
# 80/20 split with random_state 0.
digits <- datasets$load_digits()
x <- np$divide(digits$data, 16)$astype("float32")
y <- digits$target$astype("int32")
split <- model_selection$train_test_split(
  x, y, test_size = 0.2, random_state = 0L, stratify = y
)
x_train <- np$ascontiguousarray(py_get_item(split, 0L))
x_val <- np$ascontiguousarray(py_get_item(split, 1L))
y_train <- py_get_item(split, 2L)
y_val <- py_get_item(split, 3L)

# Same seed, same layers in the same order: the same initial weights and
# batch order as the Python run.
keras$utils$set_random_seed(as.integer(options$seed))
model <- keras$Sequential(list(
  keras$Input(shape = tuple(64L)),
  keras$layers$Dense(128L, activation = "relu"),
  keras$layers$Dense(64L, activation = "relu"),
  keras$layers$Dense(10L, activation = "softmax")
))
model$compile(
  optimizer = optimizer_lion(learning_rate = options$lr,
                             weight_decay = options$wd),
  loss = "sparse_categorical_crossentropy",
  metrics = list("accuracy")
)

started <- proc.time()[["elapsed"]]
history <- model$fit(
  x_train, y_train,
  batch_size = as.integer(options$batch_size),
  epochs = as.integer(options$epochs),
  validation_data = tuple(x_val, y_val),
  shuffle = TRUE,
  verbose = as.integer(options$verbose)
)
seconds <- proc.time()[["elapsed"]] - started

logged <- lapply(history$history, function(v) as.numeric(unlist(v)))
table <- data.frame(epoch = seq_along(logged$loss), logged,
                    fit_seconds = seconds)
dir.create(dirname(options$out), recursive = TRUE, showWarnings = FALSE)
write.csv(table, options$out, row.names = FALSE)
last <- table[nrow(table), ]
cat(sprintf(
  "R: %d epochs in %.1f s; final loss %.4f, accuracy %.4f, val_loss %.4f, val_accuracy %.4f\n",
  nrow(table), seconds, last$loss, last$accuracy, last$val_loss,
  last$val_accuracy
))
cat("R: history written to", options$out, "\n")
