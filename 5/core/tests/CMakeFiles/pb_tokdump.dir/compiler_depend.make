# Empty compiler generated dependencies file for pb_tokdump.
# This may be replaced when dependencies are built.
