// cmd_version.c: `peftbench --version` / `peftbench version`: the version, the git revision of
// the source tree the binary was built from (the one result files record: pb_git_revision), and
// the backends linked in: the CPU backend always (with its GEMM providers), CUDA when built with
// nvcc (the CUDA slot is chosen at link time; the stub of a build without nvcc has no ops).
// defines: pb_cmd_version
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "runner.h"
// defines: pb_gemm_providers, pb_gemm_default
#include "../engine/system.h"
// defines: pb_cuda_backend
#include "../engine/backend.h"

// PB_VERSION comes from CMakeLists.txt (project VERSION), set on this file only.
#ifndef PB_VERSION
#define PB_VERSION "unknown"
#endif

int pb_cmd_version(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peftbench version   (or peftbench --version)\n"
                   "Prints the version, the git revision of the source tree and the backends built in.\n");
            return 0;
        }
        fprintf(stderr, "peftbench version: unexpected argument '%s'\n", argv[i]);
        return 2;
    }
    char rev[64];
    pb_git_revision(rev, sizeof rev);
    printf("peftbench %s\ngit %s\nbackends: cpu (GEMM providers:", PB_VERSION, rev);
    pb_gemm_info prov[8];
    int np = pb_gemm_providers(prov, 8);
    for (int i = 0; i < np; i++) printf("%s %s", i ? "," : "", prov[i].library);
    printf("; default %s)", pb_gemm_default());
    // A backend built with nvcc (or the test emulator) fills the op table; the stub only init.
    if (pb_cuda_backend()->alloc) printf(", cuda");
    printf("\n");
    return 0;
}
