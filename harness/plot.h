// plot.h: `peftbench plot`: data files + gnuplot (plots/*.gp) PNG and SVG figures from a
// results directory: accuracy vs rank and vs learning rate per dataset, accuracy vs trainable
// parameters. A figure whose axis the results lack is skipped with a message.
// defines: pb_plot_write
#ifndef PB_PLOT_H
#define PB_PLOT_H

#include <stdio.h>
#include "../engine/common.h"

// Writes DIR/plots/<fig>.dat, .png, .svg. plotdir: folder holding the .gp scripts (NULL: $PEFTBENCH_PLOTS,
// else <source>/plots, else ./plots). Messages (skips, files written) go to msg.
pb_status pb_plot_write(const char *dir, const char *plotdir, FILE *msg, char *err, size_t errlen);

#endif
