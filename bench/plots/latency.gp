# latency.gp - latency by percentile, direct to the origin against through the proxy
# (cache_latency.csv: percentile,direct_ms,proxy_ms,hit_ms,miss_ms). The x axis counts
# "nines" (90, 99, 99.9 ...), as HdrHistogram plots do, so that the tail is visible.
load dir.'/common.gp'
set title 'Latency by percentile: direct vs through mtps-proxy'
set xlabel 'percentile'
set ylabel 'latency (ms)'
set logscale y
set xtics ('0' 0, '90' 1, '99' 2, '99.9' 3, '99.99' 4, '99.999' 5)
set xrange [0:5]
nines(p) = p >= 100 ? NaN : -log10(1 - p / 100.0)
pos(v) = v > 0 ? v : NaN
plot infile every ::1 using (nines($1)):(pos($2)) with linespoints ls 2 \
     title 'direct to the origin', \
     ''     every ::1 using (nines($1)):(pos($3)) with linespoints ls 1 title 'through the proxy'
