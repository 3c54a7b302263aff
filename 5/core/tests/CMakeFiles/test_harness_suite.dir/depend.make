# Empty dependencies file for test_harness_suite.
# This may be replaced when dependencies are built.
