# concurrency.gp - throughput and p99 latency against the number of connections
# (concurrency.csv: connections,requests_per_s,p50_ms,p99_ms,errors).
load dir.'/common.gp'
set title 'Fresh hits through mtps-proxy: throughput and p99 by concurrency'
set xlabel 'connections'
set ylabel 'requests/s'
set y2label 'p99 latency (ms)'
set logscale x 2
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot infile every ::1 using 1:2 with linespoints ls 1 title 'requests/s' axes x1y1, \
     ''     every ::1 using 1:4 with linespoints ls 2 title 'p99 (ms)' axes x1y2
