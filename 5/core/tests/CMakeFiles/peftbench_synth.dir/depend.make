# Empty dependencies file for peftbench_synth.
# This may be replaced when dependencies are built.
