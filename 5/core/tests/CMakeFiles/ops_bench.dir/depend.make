# Empty dependencies file for ops_bench.
# This may be replaced when dependencies are built.
