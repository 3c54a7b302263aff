# run.gp: the entry point `peftbench plot` runs, with an argument vector and no shell:
#   gnuplot -c run.gp PLOTDIR DATAFILE OUTFILE FMT NSERIES TITLE XLABEL YLABEL SCRIPT
# The values arrive as the strings ARG1..ARG9: they are never parsed as gnuplot code, so labels
# and paths may hold quotes, backquotes, $(...) or backslashes.
plotdir = ARG1
datafile = ARG2
outfile = ARG3
fmt = ARG4
nseries = ARG5 + 0
plottitle = ARG6
xlab = ARG7
ylab = ARG8
logx = 0
load sprintf("%s/%s", plotdir, ARG9)
