# hitmiss.gp - latency by percentile of cache hits against misses through the proxy
# (cache_latency.csv: percentile,direct_ms,proxy_ms,hit_ms,miss_ms).
load dir.'/common.gp'
set title 'Through mtps-proxy: cache HIT vs MISS latency'
set xlabel 'percentile'
set ylabel 'latency (ms)'
set logscale y
set xtics ('0' 0, '90' 1, '99' 2, '99.9' 3, '99.99' 4, '99.999' 5)
set xrange [0:5]
nines(p) = p >= 100 ? NaN : -log10(1 - p / 100.0)
pos(v) = v > 0 ? v : NaN
plot infile every ::1 using (nines($1)):(pos($4)) with linespoints ls 1 title 'HIT', \
     ''     every ::1 using (nines($1)):(pos($5)) with linespoints ls 2 title 'MISS'
