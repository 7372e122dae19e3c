# Command-line options of the R demos: `--name value` pairs over a list of
# defaults. A default's type decides how its value is read (a string stays
# a string, anything else is read as a number); `-` in a name reads as `_`.
demo_options <- function(defaults, argv = commandArgs(trailingOnly = TRUE)) {
  while (length(argv) >= 2) {
    key <- gsub("-", "_", sub("^--", "", argv[[1]]), fixed = TRUE)
    if (!key %in% names(defaults)) stop("unknown option --", key)
    defaults[[key]] <- if (is.character(defaults[[key]])) argv[[2]] else
      as.numeric(argv[[2]])
    argv <- argv[-(1:2)]
  }
  if (length(argv)) stop("options come in pairs: --name value")
  defaults
}
