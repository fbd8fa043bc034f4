# throughput.gp - requests per second over time, direct and through the proxy
# (timeseries.csv: second,direct_rps,proxy_rps,proxy_hits_per_s).
load dir.'/common.gp'
set title 'Throughput over time'
set xlabel 'second of the run'
set ylabel 'requests/s'
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set xtics 1
set mxtics 1
plot infile every ::1 using 1:2 with linespoints ls 2 title 'direct to the origin', \
     ''     every ::1 using 1:3 with linespoints ls 1 title 'through the proxy', \
     ''     every ::1 using 1:4 with linespoints ls 3 title 'of which cache hits'
