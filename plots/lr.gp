# lr.gp: accuracy vs learning rate (log x), one series per method (SVFit Fig. 6 style). Each
# series' best point is circled (DATAFILE minus ".dat" + ".best.dat": one block per series, in
# the same order), so a sweep whose best point is its first or last value shows at a glance.
load sprintf("%s/common.gp", plotdir)
set logscale x 10
set format x "%.0e"
bestfile = datafile[1:strlen(datafile) - 4] . ".best.dat"
plot for [i=0:nseries-1] datafile index i using 1:2 with linespoints pt 7 lt i+1 title columnheader(1), \
     for [i=0:nseries-1] bestfile index i using 1:2 with points pt 6 ps 2.8 lw 2 lt i+1 notitle, \
     NaN with points pt 6 ps 2 lw 2 lc rgb "black" title "best of each series"
