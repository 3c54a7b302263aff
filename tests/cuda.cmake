# CUDA backend tests (owned by the cuda area). Registered only when the CUDA backend is built.
# Label "cuda": they need a GPU and exit 77 (reported by CTest as skipped, with the reason) when
# the driver or device is missing, so a GPU-less CI only builds them. GPU sessions run
# `ctest -L cuda --output-on-failure` (docs/cuda.md).
if(PB_HAVE_CUDA)
  pb_add_c_test(test_cuda_ops SOURCES ${CMAKE_SOURCE_DIR}/tests/test_cuda_ops.c LABELS cuda)
  set_tests_properties(test_cuda_ops PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  # Same comparisons with cuBLAS in TF32 mode (PB_CUDA_MATH=tf32; GEMM tolerance 5e-3).
  add_test(NAME test_cuda_ops_tf32 COMMAND test_cuda_ops tf32 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cuda_ops_tf32 PROPERTIES LABELS cuda SKIP_RETURN_CODE 77 TIMEOUT 300)
  pb_add_c_test(test_cuda_train SOURCES ${CMAKE_SOURCE_DIR}/tests/test_cuda_train.c LABELS cuda)
  set_tests_properties(test_cuda_train PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
  # The transformers cross-check with every trace on the GPU (tests/ref/ref_models.py --device
  # cuda; skips with 77 without one). Its emulated twin is models_ref_parity_cudaemu.
  if(PB_PYTHON)
    add_test(NAME models_ref_parity_cuda
      COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_models.py $<TARGET_FILE:peftbench> --device cuda
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(models_ref_parity_cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77 TIMEOUT 600)
    # Every method against peft / the PyTorch references with every trace on the GPU.
    add_test(NAME methods_ref_peers_cuda
      COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_methods.py $<TARGET_FILE:peftbench> --device cuda
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(methods_ref_peers_cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77 TIMEOUT 900)
    # AdaLoRA step by step against peft with every trace on the GPU (tests/ref/ref_adalora.py).
    add_test(NAME methods_ref_adalora_cuda
      COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_adalora.py $<TARGET_FILE:peftbench> --device cuda
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(methods_ref_adalora_cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77 TIMEOUT 600)
  endif()
endif()

# Self-tests of the two harnesses without a GPU (--cpu-vs-cpu: a 1-thread CPU engine stands in for
# the GPU): they check the comparisons, guards and method loop themselves. Plain C, always built
# (also with -DPB_CUDA=OFF and under the sanitizers).
foreach(t test_cuda_ops test_cuda_train)
  if(NOT TARGET ${t})
    add_executable(${t} ${CMAKE_SOURCE_DIR}/tests/${t}.c)
    target_link_libraries(${t} PRIVATE peftbench_core)
  endif()
endforeach()
add_test(NAME test_cuda_harness_ops COMMAND test_cuda_ops --cpu-vs-cpu WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME test_cuda_harness_train COMMAND test_cuda_train --cpu-vs-cpu full WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cuda_harness_ops test_cuda_harness_train PROPERTIES LABELS fast TIMEOUT 120)
