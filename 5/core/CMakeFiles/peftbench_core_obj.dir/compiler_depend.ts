# CMAKE generated file: DO NOT EDIT!
# Timestamp file for compiler generated dependencies management for peftbench_core_obj.
