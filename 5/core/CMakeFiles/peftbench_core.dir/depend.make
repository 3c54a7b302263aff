# Empty dependencies file for peftbench_core.
# This may be replaced when dependencies are built.
