# Empty compiler generated dependencies file for test_ops_torch.
# This may be replaced when dependencies are built.
