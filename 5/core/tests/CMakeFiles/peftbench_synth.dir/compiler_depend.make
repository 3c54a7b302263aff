# Empty compiler generated dependencies file for peftbench_synth.
# This may be replaced when dependencies are built.
