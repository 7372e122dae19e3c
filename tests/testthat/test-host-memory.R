# retain_host_memory() in a fresh R process (the setting is process-wide and
# cannot be undone): R's own large vectors, allocated and freed again and
# again, fault fresh pages in every time by default and reuse their pages
# once memory is retained. The page faults are read from /proc/self/stat.

host_memory_code <- function(retain) {
  c(
    "suppressPackageStartupMessages(library(lionr))",
    "faults <- function() as.numeric(strsplit(readLines('/proc/self/stat'), ' ')[[1]][10])",
    if (retain) "cat('retained', retain_host_memory(), '\\n')",
    "per_round <- numeric(0)",
    "for (i in 1:6) {",
    "  before <- faults()",
    "  x <- numeric(8e6); x[] <- 1; rm(x); invisible(gc())",
    "  per_round <- c(per_round, faults() - before)",
    "}",
    "cat('faults', median(per_round[-1]), '\\n')"
  )
}

faults_of <- function(out) {
  line <- grep("^faults ", out, value = TRUE)
  expect_length(line, 1)
  as.numeric(strsplit(line, " ")[[1]][2])
}

test_that("retain_host_memory() makes freed memory reused in R's own process", {
  skip_if_no_python()
  skip_if_not(file.exists("/proc/self/stat"), "needs Linux's /proc")
  pages <- 8e6 * 8 / 4096 # one 64 MB vector

  out <- run_rscript(host_memory_code(retain = FALSE))
  expect_null(attr(out, "status"))
  expect_gte(faults_of(out), pages / 2)

  out <- run_rscript(host_memory_code(retain = TRUE))
  expect_null(attr(out, "status"))
  expect_true("retained TRUE " %in% out)
  expect_lte(faults_of(out), pages / 16)
})
