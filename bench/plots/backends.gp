# backends.gp - how the answers spread over the origins (backends.csv: backend,count).
load dir.'/common.gp'
set title 'Answers by origin (X-Served-By)'
set ylabel 'answers'
set yrange [0:*]
set style fill solid 0.8 border -1
set boxwidth 0.6
set key off
plot infile every ::1 using 0:2:xtic(1) with boxes ls 1
