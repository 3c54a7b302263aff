
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/tests/test_harness_suite.c" "tests/CMakeFiles/test_harness_suite.dir/test_harness_suite.c.o" "gcc" "tests/CMakeFiles/test_harness_suite.dir/test_harness_suite.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/5/core/CMakeFiles/peftbench_core.dir/DependInfo.cmake"
  "/work/main/5/core/CMakeFiles/peftbench_cuda_stub.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
