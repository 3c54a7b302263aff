
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/datasets/cache.c" "CMakeFiles/peftbench_core_obj.dir/datasets/cache.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/cache.c.o.d"
  "/work/main/datasets/dataset.c" "CMakeFiles/peftbench_core_obj.dir/datasets/dataset.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/dataset.c.o.d"
  "/work/main/datasets/glue.c" "CMakeFiles/peftbench_core_obj.dir/datasets/glue.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/glue.c.o.d"
  "/work/main/datasets/image.c" "CMakeFiles/peftbench_core_obj.dir/datasets/image.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/image.c.o.d"
  "/work/main/datasets/listfile.c" "CMakeFiles/peftbench_core_obj.dir/datasets/listfile.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/listfile.c.o.d"
  "/work/main/datasets/metrics.c" "CMakeFiles/peftbench_core_obj.dir/datasets/metrics.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/metrics.c.o.d"
  "/work/main/datasets/tokenizer.c" "CMakeFiles/peftbench_core_obj.dir/datasets/tokenizer.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/tokenizer.c.o.d"
  "/work/main/datasets/unicode_tables.c" "CMakeFiles/peftbench_core_obj.dir/datasets/unicode_tables.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/unicode_tables.c.o.d"
  "/work/main/datasets/util.c" "CMakeFiles/peftbench_core_obj.dir/datasets/util.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/util.c.o.d"
  "/work/main/datasets/vtab_mini.c" "CMakeFiles/peftbench_core_obj.dir/datasets/vtab_mini.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/datasets/vtab_mini.c.o.d"
  "/work/main/engine/common.c" "CMakeFiles/peftbench_core_obj.dir/engine/common.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/common.c.o.d"
  "/work/main/engine/cpu/cpu_aoft.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_aoft.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_aoft.c.o.d"
  "/work/main/engine/cpu/cpu_attention.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_attention.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_attention.c.o.d"
  "/work/main/engine/cpu/cpu_backend.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_backend.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_backend.c.o.d"
  "/work/main/engine/cpu/cpu_dense.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_dense.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_dense.c.o.d"
  "/work/main/engine/cpu/cpu_gemm.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_gemm.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_gemm.c.o.d"
  "/work/main/engine/cpu/cpu_isa.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_isa.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_isa.c.o.d"
  "/work/main/engine/cpu/cpu_nn.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_nn.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/cpu_nn.c.o.d"
  "/work/main/engine/cpu/gemm_onednn.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/gemm_onednn.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/gemm_onednn.c.o.d"
  "/work/main/engine/cpu/gemm_openblas.c" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/gemm_openblas.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/cpu/gemm_openblas.c.o.d"
  "/work/main/engine/fileutil.c" "CMakeFiles/peftbench_core_obj.dir/engine/fileutil.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/fileutil.c.o.d"
  "/work/main/engine/ops.c" "CMakeFiles/peftbench_core_obj.dir/engine/ops.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/ops.c.o.d"
  "/work/main/engine/param.c" "CMakeFiles/peftbench_core_obj.dir/engine/param.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/engine/param.c.o.d"
  "/work/main/harness/backbone.c" "CMakeFiles/peftbench_core_obj.dir/harness/backbone.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/backbone.c.o.d"
  "/work/main/harness/check.c" "CMakeFiles/peftbench_core_obj.dir/harness/check.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/check.c.o.d"
  "/work/main/harness/cli_main.c" "CMakeFiles/peftbench_core_obj.dir/harness/cli_main.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cli_main.c.o.d"
  "/work/main/harness/cli_method.c" "CMakeFiles/peftbench_core_obj.dir/harness/cli_method.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cli_method.c.o.d"
  "/work/main/harness/cmd_bench.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_bench.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_bench.c.o.d"
  "/work/main/harness/cmd_check.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_check.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_check.c.o.d"
  "/work/main/harness/cmd_data.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_data.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_data.c.o.d"
  "/work/main/harness/cmd_info.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_info.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_info.c.o.d"
  "/work/main/harness/cmd_methods.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_methods.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_methods.c.o.d"
  "/work/main/harness/cmd_plot.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_plot.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_plot.c.o.d"
  "/work/main/harness/cmd_report.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_report.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_report.c.o.d"
  "/work/main/harness/cmd_run.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_run.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_run.c.o.d"
  "/work/main/harness/cmd_system.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_system.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_system.c.o.d"
  "/work/main/harness/cmd_trace.c" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_trace.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/cmd_trace.c.o.d"
  "/work/main/harness/grid.c" "CMakeFiles/peftbench_core_obj.dir/harness/grid.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/grid.c.o.d"
  "/work/main/harness/jsonutil.c" "CMakeFiles/peftbench_core_obj.dir/harness/jsonutil.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/jsonutil.c.o.d"
  "/work/main/harness/loop.c" "CMakeFiles/peftbench_core_obj.dir/harness/loop.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/loop.c.o.d"
  "/work/main/harness/plot.c" "CMakeFiles/peftbench_core_obj.dir/harness/plot.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/plot.c.o.d"
  "/work/main/harness/report.c" "CMakeFiles/peftbench_core_obj.dir/harness/report.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/report.c.o.d"
  "/work/main/harness/results.c" "CMakeFiles/peftbench_core_obj.dir/harness/results.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/results.c.o.d"
  "/work/main/harness/runner.c" "CMakeFiles/peftbench_core_obj.dir/harness/runner.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/runner.c.o.d"
  "/work/main/harness/stage.c" "CMakeFiles/peftbench_core_obj.dir/harness/stage.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/stage.c.o.d"
  "/work/main/harness/suite.c" "CMakeFiles/peftbench_core_obj.dir/harness/suite.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/suite.c.o.d"
  "/work/main/harness/train.c" "CMakeFiles/peftbench_core_obj.dir/harness/train.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/harness/train.c.o.d"
  "/work/main/methods/adapter_common.c" "CMakeFiles/peftbench_core_obj.dir/methods/adapter_common.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/adapter_common.c.o.d"
  "/work/main/methods/aoft.c" "CMakeFiles/peftbench_core_obj.dir/methods/aoft.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/aoft.c.o.d"
  "/work/main/methods/bitfit.c" "CMakeFiles/peftbench_core_obj.dir/methods/bitfit.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/bitfit.c.o.d"
  "/work/main/methods/full.c" "CMakeFiles/peftbench_core_obj.dir/methods/full.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/full.c.o.d"
  "/work/main/methods/head.c" "CMakeFiles/peftbench_core_obj.dir/methods/head.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/head.c.o.d"
  "/work/main/methods/ia3.c" "CMakeFiles/peftbench_core_obj.dir/methods/ia3.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/ia3.c.o.d"
  "/work/main/methods/lntuning.c" "CMakeFiles/peftbench_core_obj.dir/methods/lntuning.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/lntuning.c.o.d"
  "/work/main/methods/lora.c" "CMakeFiles/peftbench_core_obj.dir/methods/lora.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/lora.c.o.d"
  "/work/main/methods/method.c" "CMakeFiles/peftbench_core_obj.dir/methods/method.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/method.c.o.d"
  "/work/main/methods/peft_io.c" "CMakeFiles/peftbench_core_obj.dir/methods/peft_io.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/peft_io.c.o.d"
  "/work/main/methods/pissa.c" "CMakeFiles/peftbench_core_obj.dir/methods/pissa.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/pissa.c.o.d"
  "/work/main/methods/registry.c" "CMakeFiles/peftbench_core_obj.dir/methods/registry.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/registry.c.o.d"
  "/work/main/methods/svd.c" "CMakeFiles/peftbench_core_obj.dir/methods/svd.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/svd.c.o.d"
  "/work/main/methods/svfit.c" "CMakeFiles/peftbench_core_obj.dir/methods/svfit.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/methods/svfit.c.o.d"
  "/work/main/models/config.c" "CMakeFiles/peftbench_core_obj.dir/models/config.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/models/config.c.o.d"
  "/work/main/models/model.c" "CMakeFiles/peftbench_core_obj.dir/models/model.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/models/model.c.o.d"
  "/work/main/models/roberta.c" "CMakeFiles/peftbench_core_obj.dir/models/roberta.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/models/roberta.c.o.d"
  "/work/main/models/safetensors.c" "CMakeFiles/peftbench_core_obj.dir/models/safetensors.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/models/safetensors.c.o.d"
  "/work/main/models/vit.c" "CMakeFiles/peftbench_core_obj.dir/models/vit.c.o" "gcc" "CMakeFiles/peftbench_core_obj.dir/models/vit.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
