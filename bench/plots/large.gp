# large.gp - large transfers: MB/s of the first fetch through the proxy (a miss), the
# second (a hit when the object fits the cache) and a direct one
# (large.csv: size_bytes,label,miss_MBps,hit_MBps,direct_MBps).
load dir.'/common.gp'
set title 'Large transfers (checked byte for byte)'
set ylabel 'MB/s (MiB/s)'
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
plot infile every ::1 using 3:xtic(2) ls 2 title 'first, through the proxy', \
     ''     every ::1 using 4 ls 1 title 'again, through the proxy', \
     ''     every ::1 using 5 ls 3 title 'direct to the origin'
