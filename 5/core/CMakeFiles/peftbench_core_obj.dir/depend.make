# Empty dependencies file for peftbench_core_obj.
# This may be replaced when dependencies are built.
