// main.c: the peftbench executable: the CLI of harness/cli_main.c, nothing else.
#include "cli.h"

int main(int argc, char **argv) { return pb_cli_main(argc, argv); }
