// cli.h: the peftbench subcommands. Each lives in its own harness/cmd_*.c file and returns the
// process exit status (0 ok, 1 failure such as a failed cell or regression, 2 usage/input error).
// defines: pb_cli_main, pb_cmd_info, pb_cmd_trace, pb_cmd_bench, pb_cmd_run, pb_cmd_report, pb_cmd_plot,
//          pb_cmd_check, pb_cmd_data, pb_cmd_info_system, pb_cmd_methods, pb_cmd_version, pb_cmd_tokenizer,
//          pb_cmd_slurm, pb_cmd_status
#ifndef PB_CLI_H
#define PB_CLI_H

#include "../engine/ops.h" // pb_device

// The whole CLI: `peftbench COMMAND ...` (cli_main.c).
int pb_cli_main(int argc, char **argv);
int pb_cmd_info(int argc, char **argv);
int pb_cmd_info_system(int argc, char **argv); // info --system (cmd_system.c)
int pb_cmd_trace(int argc, char **argv);
int pb_cmd_bench(int argc, char **argv);
int pb_cmd_run(int argc, char **argv);
int pb_cmd_report(int argc, char **argv);
int pb_cmd_plot(int argc, char **argv);
int pb_cmd_check(int argc, char **argv);
int pb_cmd_data(int argc, char **argv);
int pb_cmd_tokenizer(int argc, char **argv); // tokenizer train / encode (cmd_tokenizer.c)
int pb_cmd_methods(int argc, char **argv);
int pb_cmd_version(int argc, char **argv); // also `peftbench --version` (cmd_version.c)
int pb_cmd_slurm(int argc, char **argv);   // suite as Slurm jobs (cmd_slurm.c, docs/cluster.md)
int pb_cmd_status(int argc, char **argv);  // cell states of a results directory (cmd_status.c)

// Parses a --device value ("cpu" | "cuda") into *out; 0 on success, else prints
// "peftbench CMD: --device expects cpu or cuda, got 'TEXT'" and returns 2 (the exit status).
int pb_cli_device_arg(const char *cmd, const char *text, pb_device *out);

#endif
