# Empty dependencies file for peftbench.
# This may be replaced when dependencies are built.
