# Charts of bench/run.sh results (called by run.sh as: gnuplot -e "dir='RESULTS'" plot.gp)
#   results.svg: lite's speed ratio to each peer, per workload (>1 = lite faster), log scale
#   density.svg: RSS per requested byte (rounded to 16) against block size, per allocator
if (!exists("dir")) dir = "results"
set datafile missing "-"
set terminal svg size 1200,560 dynamic noenhanced font "sans,11" background "white"

set output dir."/results.svg"
set title "lite-malloc speed / peer speed, median of runs (above 1: lite faster)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [*<0.5:2<*]   # autoscaled, but always showing 1/2..2
set ytics ("1/64" 0.015625, "1/32" 0.03125, "1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, \
           "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set grid ytics
set xtics rotate by -30 nomirror
set key outside top center horizontal
ncol = system("head -n 1 ".dir."/speed.dat | wc -w") + 0
plot for [c=2:ncol] dir."/speed.dat" using c:xtic(1) title columnheader(c), \
     1 with lines lc rgb "black" lw 1.5 notitle

reset
set datafile missing "-"
set output dir."/density.svg"
set title "Density: RSS growth / (blocks x size rounded up to 16)   (1 = no waste)"
set xlabel "block size (bytes)"
set ylabel "RSS per requested byte"
set logscale x 2
set xrange [8:65536]
set yrange [0.4:*]   # from below 0.5: peers pack 8-byte requests into 8 bytes
set grid
set key top right
ncol = system("head -n 1 ".dir."/density.dat | wc -w") + 0
plot for [c=2:ncol] dir."/density.dat" using 1:c with linespoints pt 7 ps 0.4 title columnheader(c)
