# Harness tests: suite parsing/grid (pure C), and CLI behaviour (resume after SIGKILL, shards,
# plots, check) on suites run by peftbench_synth: the peftbench CLI with a fixture trainer
# (tests/peftbench_synth.c, never part of peftbench).
add_executable(peftbench_synth ${CMAKE_SOURCE_DIR}/tests/peftbench_synth.c)
target_link_libraries(peftbench_synth PRIVATE peftbench_core)
pb_add_c_test(test_harness_suite SOURCES ${CMAKE_SOURCE_DIR}/tests/test_harness_suite.c LABELS fast)
# `check` without training (issue 17): statistics, baseline writer, exact / statistical / tolerance
# modes, one error per bad baseline field, JUnit and Markdown escaping.
pb_add_c_test(test_check SOURCES ${CMAKE_SOURCE_DIR}/tests/test_check.c LABELS fast)
pb_add_c_test(test_report_sweeps SOURCES ${CMAKE_SOURCE_DIR}/tests/test_report_sweeps.c LABELS fast)
add_test(NAME test_harness_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_harness_cli.sh $<TARGET_FILE:peftbench_synth>
         $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_harness_cli PROPERTIES LABELS "fast" TIMEOUT 120)
# Engine trainer on tiny real cells: bitwise determinism, pretraining cache, head-only, divergence.
pb_add_c_test(test_harness_train SOURCES ${CMAKE_SOURCE_DIR}/tests/test_harness_train.c LABELS fast)
# `peftbench run` end to end on a micro suite with real engine cells (pretraining stage included).
add_test(NAME test_harness_e2e COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_harness_e2e.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_harness_e2e PROPERTIES LABELS "fast" TIMEOUT 300)
# `check` has power against a real regression (issue 17): a tiny suite trained on two GEMM kernels;
# exact mode on the baseline's kernel, statistical on the other; LoRA's lr halved is flagged, the
# unchanged build passes; --junit parses as JUnit XML (Python), --markdown. 40-80 s here.
add_test(NAME test_check_power COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_check_power.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_check_power PROPERTIES TIMEOUT 900)
# Hostile / careless input at the CLI (issue 11): no shell, escaping in every output format.
add_test(NAME test_security_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_security_cli.sh $<TARGET_FILE:peftbench>
         $<TARGET_FILE:peftbench_synth>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_security_cli PROPERTIES LABELS "fast" TIMEOUT 300)
# `report --html` (issue 18): index.html opened in headless chromium (screenshot not blank; DOM has
# every row, figure and curve; hostile labels stay text; without gnuplot, tables and a note).
# Label "browser": needs chromium (scripts/install-deps.sh --python installs it), so not "fast".
add_test(NAME test_report_html COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_report_html.sh $<TARGET_FILE:peftbench>
         $<TARGET_FILE:peftbench_synth>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_report_html PROPERTIES LABELS "browser" TIMEOUT 300)
# `peftbench --version` / `peftbench version`: version, git revision, backends (issue 18).
add_test(NAME test_cli_version COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_cli_version.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_cli_version PROPERTIES LABELS "fast" TIMEOUT 60)
# Grid expansion scales (issue 11): 2e5 cells in --dry-run well inside the timeout (was quadratic).
add_test(NAME test_grid_scale COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_grid_scale.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_grid_scale PROPERTIES LABELS "fast" TIMEOUT 90)
# The training loop of `run` (harness/loop.c, through trace) vs a PyTorch/transformers loop:
# warmup + cosine/linear schedules, head-LR group, weight-decay groups, clipping, label smoothing,
# AdamW; 32 steps over 4 batches, tiny ViT and RoBERTa, full FT and LoRA (about 25 s).
if(PB_PYTHON)
  add_test(NAME ref_recipe COMMAND ${PB_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/ref_recipe.py $<TARGET_FILE:peftbench>)
  set_tests_properties(ref_recipe PROPERTIES LABELS ref TIMEOUT 300)
endif()
# sh quoting of the job scripts against /bin/sh, argv spawning, squeue lookup (issue 15).
pb_add_c_test(test_slurm_quote SOURCES ${CMAKE_SOURCE_DIR}/tests/test_slurm_quote.c LABELS fast)
# `peftbench slurm` / `status` without a Slurm (issue 15): --dry-run of aoft-vtab1k (no data, no
# sbatch), the job scripts run by sh with a hostile --out, status running/stale, --cells, and the
# backbone lock (one pretrainer; a waiter takes over from a SIGKILLed holder). About 25 s.
add_test(NAME test_slurm_cli COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_slurm_cli.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_slurm_cli PROPERTIES LABELS "fast" TIMEOUT 180)
# `peftbench slurm` on a real single-node Slurm (issue 15): the test starts munged, slurmctld and
# slurmd (scripts/slurm-local.sh; root in CI) and stops them; 4-task array == local run bit for
# bit, scancel of a task mid-run, resubmission runs only the cells left. About 45 s. Skips (77)
# without Slurm outside CI; in CI (CI=true) a missing Slurm fails.
add_test(NAME test_slurm COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_slurm.sh $<TARGET_FILE:peftbench>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_slurm PROPERTIES LABELS "slurm" TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
