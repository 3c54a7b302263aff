# curves.gp: the training curves of `report --html`, one SVG per cell, all in one gnuplot run:
#   gnuplot -c curves.gp DATAFILE OUTPREFIX NBLOCKS MASKS
# run with an argument vector and no shell, like run.gp: the values arrive as the strings ARG1..ARG4
# and are never parsed as gnuplot code. DATAFILE holds one index block per cell (columns: epoch,
# train loss, val x100, test x100; NaN where not recorded); block i is drawn to OUTPREFIX<i>.svg.
# MASKS: one word per block, 1 = val/test have a value, 2 = the loss has one, 3 = both (gnuplot
# refuses to autoscale an axis with no point, so an empty axis is left out).
datafile = ARG1
outprefix = ARG2
nblocks = ARG3 + 0
masks = ARG4
set terminal svg size 560,330 dynamic enhanced font "sans,11"
set xlabel "epoch"
set ylabel "val / test x100"
set y2label "train loss"
set ytics nomirror
set y2tics
set grid
set key outside top center horizontal noenhanced
do for [i=0:nblocks-1] {
    m = int(word(masks, i + 1))
    set output sprintf("%s%d.svg", outprefix, i)
    stats datafile index i using 1 nooutput
    if (STATS_max - STATS_min <= 12) { set xtics 1 } else { set xtics autofreq }
    if (m == 3) {
        plot datafile index i using 1:3 with linespoints pt 7 ps 0.7 lw 2 title "val", \
             '' index i using 1:4 with linespoints pt 5 ps 0.7 lw 2 title "test", \
             '' index i using 1:2 axes x1y2 with linespoints pt 9 ps 0.7 lw 1.5 dt 2 title "train loss"
    }
    if (m == 1) {
        plot datafile index i using 1:3 with linespoints pt 7 ps 0.7 lw 2 title "val", \
             '' index i using 1:4 with linespoints pt 5 ps 0.7 lw 2 title "test"
    }
    if (m == 2) {
        plot datafile index i using 1:2 axes x1y2 with linespoints pt 9 ps 0.7 lw 1.5 dt 2 title "train loss"
    }
    unset output
}
