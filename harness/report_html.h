// report_html.h: `peftbench report DIR --html` (and the end of `peftbench run`): DIR/index.html,
// one self-contained page (no network, no external CSS or JS; figures as inline SVG drawn by
// gnuplot) with the paper-layout tables (best per column in bold; paper vs ours with coloured
// deltas), the rank / LR / parameter figures of `plot`, one section per cell (config, status,
// training curves) and the engine fingerprint (backend, GEMM kernel, threads, git revision).
// defines: pb_report_html_write, pb_report_html_make
#ifndef PB_REPORT_HTML_H
#define PB_REPORT_HTML_H

#include <stdio.h>
#include "../engine/common.h"
#include "plot.h"

// Writes DIR/index.html (atomically) from DIR/cells/*.json and DIR/manifest.json, and the training
// curves it inlines to DIR/plots/curves/ (curves.dat, curve_<i>.svg; one gnuplot run for all cells).
// reference: a reference table path or NULL/"" (then the manifest's). plotdir: the gnuplot scripts
// (NULL: pb_plot_default_dir). figs: the figures pb_plot_write_figs rendered into DIR/plots (NULL:
// none); fig_note: why figures are missing or incomplete, shown on the page (NULL/"": none).
// gnuplot missing or failing on the curves is a note on the page, not an error. Messages (files
// written, notes) go to msg (may be NULL). Errors: results unreadable, reference unreadable, I/O.
pb_status pb_report_html_write(const char *dir, const char *reference, const char *plotdir, const pb_plot_figs *figs,
                               const char *fig_note, FILE *msg, char *err, size_t errlen);

// What `report --html` and the end of `run` do: the figures (pb_plot_write_figs: PNG + SVG in
// DIR/plots), then pb_report_html_write with them. A plot error (no gnuplot) is printed to msg as
// "plot: ..." and becomes the page's figure note.
pb_status pb_report_html_make(const char *dir, const char *reference, const char *plotdir, FILE *msg, char *err,
                              size_t errlen);

#endif
