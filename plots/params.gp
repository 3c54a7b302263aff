# params.gp: average accuracy vs trainable parameters (log x), one series per method.
# Colour cycles over 8 and the point shape changes every 8 series, so up to 40 methods (a
# baselines suite has 25) stay distinguishable in the key.
load sprintf("%s/common.gp", plotdir)
set logscale x 10
shapes = "7 5 9 13 11"
plot for [i=0:nseries-1] datafile index i using 1:2 with linespoints \
    lc (i % 8) + 1 pt int(word(shapes, (i / 8) % 5 + 1)) ps 1.3 title columnheader(1)
