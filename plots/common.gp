# common.gp: terminal and style shared by the peftbench figures.
# Variables set by run.gp (from `peftbench plot`'s argument vector): datafile, outfile, fmt ("png" | "svg"),
# nseries, plottitle, xlab, ylab, logx (0/1). Each series is one index block of datafile whose
# first line is the series name (read with columnheader).
if (fmt eq "svg") {
    set terminal svg size 800,560 dynamic enhanced font "sans,12"
} else {
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
        set terminal pngcairo size 800,560 enhanced font "sans,11"
    } else {
        set terminal png size 800,560
    }
}
set output outfile
set title plottitle noenhanced
set xlabel xlab
set ylabel ylab
set key outside right top noenhanced
set grid
if (logx) { set logscale x 2 }
