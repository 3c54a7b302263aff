# rank.gp: accuracy vs adapter rank, one series per method (SVFit Fig. 5 style).
load sprintf("%s/common.gp", plotdir)
set logscale x 2
plot for [i=0:nseries-1] datafile index i using 1:2 with linespoints pt 7 title columnheader(1)
