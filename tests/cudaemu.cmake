# cudaemu: the engine/cuda kernels and host code executed on the CPU through a CUDA runtime +
# cuBLAS emulator (tests/cudaemu, docs/cuda.md "Running the kernels without a GPU"). Needs only
# python3 (the .cu -> C++ translation), a C++17 compiler and OpenBLAS: no nvcc, no GPU, so it also
# runs in the sanitizer build (-DPB_CUDA=OFF).
if(NOT PB_CUDAEMU OR NOT CMAKE_CXX_COMPILER OR NOT PB_PYTHON)
  message(STATUS "peftbench: cudaemu tests disabled (PB_CUDAEMU=${PB_CUDAEMU}, C++ compiler or python3 missing)")
  return()
endif()

set(PB_EMU_DIR ${CMAKE_SOURCE_DIR}/tests/cudaemu)
set(PB_EMU_GEN ${CMAKE_BINARY_DIR}/cudaemu)

# pb_emu_translate(out_var file.cu...): translated C++ sources in the build dir.
function(pb_emu_translate out)
  set(gen)
  foreach(cu ${ARGN})
    get_filename_component(nm ${cu} NAME)
    set(o ${PB_EMU_GEN}/${nm}.cpp)
    add_custom_command(OUTPUT ${o}
      COMMAND ${PB_PYTHON} ${PB_EMU_DIR}/translate.py ${cu} ${o}
      DEPENDS ${cu} ${PB_EMU_DIR}/translate.py
      COMMENT "cudaemu: translating ${nm}" VERBATIM)
    list(APPEND gen ${o})
  endforeach()
  set(${out} ${gen} PARENT_SCOPE)
endfunction()

# The emulated runtime (CUDA runtime + cuBLAS subset). The build's C flags (-Wall -Wextra
# -Werror, sanitizers) apply to C++ too; -ffp-contract=off matches nvcc --fmad=false.
add_library(pb_cudaemu_rt STATIC ${PB_EMU_DIR}/emu.cpp)
target_include_directories(pb_cudaemu_rt PUBLIC ${PB_EMU_DIR}/include PRIVATE ${CBLAS_INCLUDE})
target_compile_options(pb_cudaemu_rt PUBLIC -ffp-contract=off)
set_target_properties(pb_cudaemu_rt PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
  CXX_EXTENSIONS OFF)
target_link_libraries(pb_cudaemu_rt PUBLIC ${OPENBLAS_LIB})

# Every engine/cuda/*.cu (globbed: new files join by themselves), translated and compiled.
file(GLOB PB_EMU_CU CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/engine/cuda/*.cu)
pb_emu_translate(PB_EMU_ENGINE_SRC ${PB_EMU_CU})
add_library(peftbench_cudaemu STATIC ${PB_EMU_ENGINE_SRC})
target_include_directories(peftbench_cudaemu PRIVATE ${CMAKE_SOURCE_DIR} ${CBLAS_INCLUDE})
# "cuda.h" resolves to engine/cuda/cuda.h from the translated files in the build dir
target_compile_options(peftbench_cudaemu PRIVATE -iquote ${CMAKE_SOURCE_DIR}/engine/cuda)
set_target_properties(peftbench_cudaemu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
  CXX_EXTENSIONS OFF)
target_link_libraries(peftbench_cudaemu PUBLIC pb_cudaemu_rt)

# The core objects with the emulated backend (the real/stub one is left out).
add_library(peftbench_core_emu STATIC)
target_link_libraries(peftbench_core_emu PUBLIC peftbench_core_obj peftbench_cudaemu)
target_link_libraries(peftbench_cudaemu PRIVATE peftbench_core_emu) # pb_abort_at, pb_errf, ...

# The GPU parity tests, from the same sources as the `cuda` tests, on the emulated device, in
# both thread orders (a missing barrier shows up as a difference between the two).
foreach(t test_cuda_ops test_cuda_train)
  add_executable(${t}_emu ${CMAKE_SOURCE_DIR}/tests/${t}.c)
  target_link_libraries(${t}_emu PRIVATE peftbench_core_emu)
endforeach()
foreach(order fwd rev)
  if(order STREQUAL "fwd")
    set(env PB_CUDAEMU_ORDER=forward)
  else()
    set(env PB_CUDAEMU_ORDER=reverse)
  endif()
  # The CPU engine's idle OpenMP worker would spin beside the (single-threaded) emulator.
  list(APPEND env OMP_WAIT_POLICY=PASSIVE)
  add_test(NAME test_cudaemu_ops_${order} COMMAND test_cuda_ops_emu WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  add_test(NAME test_cudaemu_ops_tf32_${order} COMMAND test_cuda_ops_emu tf32 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  add_test(NAME test_cudaemu_train_${order} COMMAND test_cuda_train_emu WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_cudaemu_ops_${order} test_cudaemu_ops_tf32_${order} test_cudaemu_train_${order}
    PROPERTIES LABELS "fast;cudaemu" ENVIRONMENT "${env}" TIMEOUT 600)
endforeach()
# No device: the backend's init must fail with its message (the harness then skips with 77).
add_test(NAME test_cudaemu_no_device COMMAND test_cuda_ops_emu WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cudaemu_no_device PROPERTIES LABELS "fast;cudaemu"
  ENVIRONMENT PB_CUDAEMU_DEVICES=0
  PASS_REGULAR_EXPRESSION "SKIP test_cuda_ops: CUDA driver/GPU not available: no CUDA-capable device is detected")

# Self-tests of the emulator: cuBLAS against naive loops, barriers and shuffles that must work,
# and misuse it must catch (each negative case runs in a child process whose abort message is
# checked: tests/cudaemu/selftest.cu).
pb_emu_translate(PB_EMU_SELFTEST_SRC ${PB_EMU_DIR}/selftest.cu)
add_executable(cudaemu_selftest ${PB_EMU_SELFTEST_SRC})
set_target_properties(cudaemu_selftest PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
  CXX_EXTENSIONS OFF)
target_link_libraries(cudaemu_selftest PRIVATE pb_cudaemu_rt)
add_test(NAME cudaemu_selftest COMMAND cudaemu_selftest)
set_tests_properties(cudaemu_selftest PROPERTIES LABELS "fast;cudaemu" TIMEOUT 120)
foreach(c divergent_sync sync_sites partial_warp_shfl partial_mask_shfl shfl_lane_exited
          oversize_block zero_grid unchecked_launch memcpy_oob memcpy_freed memset_oob kernel_host_ptr kernel_oob
          missing_barrier gemm_operand_oob)
  add_test(NAME cudaemu_catches_${c} COMMAND cudaemu_selftest expect ${c})
  set_tests_properties(cudaemu_catches_${c} PROPERTIES LABELS "fast;cudaemu" TIMEOUT 60)
endforeach()
if(NOT PB_SANITIZE) # device memory is plain heap under ASan: host dereferences are not trapped
  add_test(NAME cudaemu_catches_host_deref COMMAND cudaemu_selftest expect host_deref)
  set_tests_properties(cudaemu_catches_host_deref PROPERTIES LABELS "fast;cudaemu" TIMEOUT 60)
endif()

# The CLI on the emulated device (end-to-end runs with --device cuda: trainer, eval, reports).
add_executable(peftbench_emu ${CMAKE_SOURCE_DIR}/harness/main.c)
target_link_libraries(peftbench_emu PRIVATE peftbench_core_emu)

# Device-side validation (error-flag word) reported at the next sync with the CPU's message.
add_executable(test_cudaemu_flags ${PB_EMU_DIR}/test_cudaemu_flags.c)
target_link_libraries(test_cudaemu_flags PRIVATE peftbench_core_emu)
add_test(NAME test_cudaemu_flags COMMAND test_cudaemu_flags WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cudaemu_flags PROPERTIES LABELS "fast;cudaemu" TIMEOUT 60)

# Harness level: a 6-method nano suite through `peftbench run` on the CPU and through
# `peftbench_emu run --device cuda`; per-epoch losses within 1e-4 relative, accuracies within one
# validation example (~1.5 min on 2 cores: label slow).
add_test(NAME test_cudaemu_suite
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_cudaemu_suite.sh $<TARGET_FILE:peftbench> $<TARGET_FILE:peftbench_emu>
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cudaemu_suite PROPERTIES LABELS "slow;cudaemu" ENVIRONMENT OMP_WAIT_POLICY=PASSIVE TIMEOUT 900)

# The transformers cross-check of ViT / RoBERTa (tests/ref/ref_models.py: logits, loss, every
# gradient, 5 AdamW steps, save/load) with every trace on the emulated CUDA backend: the CUDA
# engine against the independent peer, at the CPU's tolerances.
add_test(NAME models_ref_parity_cudaemu
  COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_models.py $<TARGET_FILE:peftbench_emu> --device cuda
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(models_ref_parity_cudaemu PROPERTIES LABELS "ref;cudaemu"
  ENVIRONMENT OMP_WAIT_POLICY=PASSIVE TIMEOUT 600)
# Every method (LoRA/PiSSA against peft, SVFit/AOFT against independent PyTorch modules, head,
# merge and save) with every trace on the emulated CUDA backend (tests/ref/ref_methods.py).
add_test(NAME methods_ref_peers_cudaemu
  COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_methods.py $<TARGET_FILE:peftbench_emu> --device cuda
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(methods_ref_peers_cudaemu PROPERTIES LABELS "ref;cudaemu"
  ENVIRONMENT OMP_WAIT_POLICY=PASSIVE TIMEOUT 900)
# AdaLoRA step by step against peft (tests/ref/ref_adalora.py) on the emulated CUDA backend.
add_test(NAME methods_ref_adalora_cudaemu
  COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_adalora.py $<TARGET_FILE:peftbench_emu> --device cuda
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(methods_ref_adalora_cudaemu PROPERTIES LABELS "ref;cudaemu"
  ENVIRONMENT OMP_WAIT_POLICY=PASSIVE TIMEOUT 600)
# The masked-LM head against transformers' RobertaForMaskedLM (tests/ref/ref_mlm.py: logits, loss,
# every gradient incl. the tied embedding, 3 AdamW steps, save/load) on the emulated CUDA backend.
add_executable(pb_mlm_trace_emu ${CMAKE_SOURCE_DIR}/tests/tools_mlm_trace.c)
target_link_libraries(pb_mlm_trace_emu PRIVATE peftbench_core_emu)
add_test(NAME models_ref_mlm_cudaemu
  COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_mlm.py $<TARGET_FILE:pb_mlm_trace_emu> --device cuda
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(models_ref_mlm_cudaemu PROPERTIES LABELS "ref;cudaemu"
  ENVIRONMENT OMP_WAIT_POLICY=PASSIVE TIMEOUT 600)
