// plot.h: `peftbench plot`: data files + gnuplot (plots/*.gp) PNG and SVG figures from a
// results directory: accuracy vs rank and vs learning rate per dataset, accuracy vs trainable
// parameters. A figure whose axis the results lack is skipped with a message.
// defines: pb_plot_write, pb_plot_write_figs, pb_plot_fig, pb_plot_figs, pb_plot_figs_free,
//          pb_plot_render, pb_plot_spawn, pb_plot_default_dir
#ifndef PB_PLOT_H
#define PB_PLOT_H

#include <stdio.h>
#include "../engine/common.h"

// Writes DIR/plots/<fig>.dat, .png, .svg. plotdir: folder holding the .gp scripts (NULL: $PEFTBENCH_PLOTS,
// else <source>/plots, else ./plots). Messages (skips, files written) go to msg.
pb_status pb_plot_write(const char *dir, const char *plotdir, FILE *msg, char *err, size_t errlen);

// One rendered figure: DIR/plots/<name>.{dat,png,svg}; title is its caption (holds labels: user text).
typedef struct {
    char name[200];
    char title[300];
} pb_plot_fig;
// The figures a pb_plot_write_figs call made, in order. Start from {0}; free with pb_plot_figs_free.
typedef struct {
    pb_plot_fig *fig; // (n) owned
    int n;
} pb_plot_figs;
void pb_plot_figs_free(pb_plot_figs *figs);

// pb_plot_write, and appends every figure it rendered to *figs (may be NULL). On an error the
// figures made before it stay listed (report --html shows them, with the error as a note).
pb_status pb_plot_write_figs(const char *dir, const char *plotdir, FILE *msg, pb_plot_figs *figs, char *err,
                             size_t errlen);

// Runs `gnuplot -c PLOTDIR/run.gp PLOTDIR DAT OUTFILE FMT NSERIES TITLE XLAB YLAB SCRIPT` through
// posix_spawnp (an argument vector, no shell): one figure in fmt ("png" | "svg"). Errors: gnuplot
// cannot be started ("cannot run gnuplot: ..."), exits non-zero, or writes an empty file.
pb_status pb_plot_render(const char *plotdir, const char *script, const char *dat, const char *outfile,
                         const char *fmt, int nseries, const char *title, const char *xlab, const char *ylab, char *err,
                         size_t errlen);

// Runs argv[0] (PATH lookup, posix_spawnp: no shell) with argv, stdout and stderr into a pipe;
// keeps the first line of output in first (n bytes, for an error message). Returns the exit
// status (0 ok, 128 + signal when killed), or -1 with errno set when it could not be started.
int pb_plot_spawn(char *const argv[], char *first, size_t n);

// The default script folder: $PEFTBENCH_PLOTS, else <source>/plots when it holds run.gp, else "plots".
void pb_plot_default_dir(char *out, size_t n);

#endif
