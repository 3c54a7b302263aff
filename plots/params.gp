# params.gp: average accuracy vs trainable parameters (log x), one series per method.
load sprintf("%s/common.gp", plotdir)
set logscale x 10
plot for [i=0:nseries-1] datafile index i using 1:2 with linespoints pt 7 ps 1.3 title columnheader(1)
