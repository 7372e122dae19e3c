# Runs the testthat tests of lionr (R CMD check, or Rscript tests/testthat.R).
# Tests that need Python skip themselves when lionr cannot use Python, unless
# the environment variable LIONR_REQUIRE_PYTHON is "1".
library(testthat)
library(lionr)

test_check("lionr")
