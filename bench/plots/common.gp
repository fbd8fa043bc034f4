# common.gp - what every mtps-bench chart shares. The caller sets, with gnuplot -e:
#   infile  the CSV file to plot      outfile  the image to write
#   fmt     svg, pngcairo or png      title    (optional) the chart's title
if (!exists("fmt")) fmt = 'svg'
if (fmt eq 'svg') {
	set terminal svg size 760,420 dynamic enhanced font 'Helvetica,12' background rgb 'white'
} else {
	if (fmt eq 'pngcairo') {
		set terminal pngcairo size 760,420 enhanced font 'Helvetica,11' background rgb 'white'
	} else {
		set terminal png size 760,420 background rgb 'white'
	}
}
set output outfile
set datafile separator ','
set datafile missing ''
set grid ytics lc rgb '#dddddd'
set border 3
set tics nomirror
set key tmargin center horizontal
set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8
set style line 2 lc rgb '#d62728' lw 2 pt 5 ps 0.8
set style line 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.8
set style line 4 lc rgb '#ff7f0e' lw 2 pt 11 ps 0.8
