# Empty compiler generated dependencies file for time_methods_init.
# This may be replaced when dependencies are built.
