# Empty compiler generated dependencies file for test_ops_grad.
# This may be replaced when dependencies are built.
