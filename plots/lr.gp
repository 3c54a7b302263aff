# lr.gp: accuracy vs learning rate (log x), one series per method (SVFit Fig. 6 style).
load sprintf("%s/common.gp", plotdir)
set logscale x 10
set format x "%.0e"
plot for [i=0:nseries-1] datafile index i using 1:2 with linespoints pt 7 title columnheader(1)
