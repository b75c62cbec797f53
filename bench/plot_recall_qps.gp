# Recall@10 vs QPS of one data set, from engram_hnsw_bench --data-out files (columns: ef,
# Engram recall@10, Engram QPS, hnswlib recall@10, hnswlib QPS).
#
# Usage: gnuplot -e "out='x.png'; name='title'; files='a.dat b.dat'; isas='avx512 sse'" \
#                plot_recall_qps.gp
#   files  one or more data files of the same data set (one per hnswlib build); the Engram line
#          is taken from the first (Engram's code is the same in every build)
#   isas   the hnswlib distance path of each file, in the same order (avx512, avx, sse, scalar)
# Engram's points are labelled with their ef (to their left); hnswlib's points at the same ef
# have nearly the same recall (same M, ef_construction and data), so they lie straight below or
# above.
if (!exists("out") || !exists("files") || !exists("isas")) {
    print "plot_recall_qps.gp: set out, files and isas with -e"
    exit status 2
}
if (!exists("name")) { name = "" }
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 900,600 enhanced font "Sans,11"
} else {
    set terminal png size 900,600 font "Sans,11"
}
set output out
set title name noenhanced
set xlabel "recall@10" noenhanced
set ylabel "queries per second, 1 thread (log scale)" noenhanced
set logscale y
# Tics at 1, 2 and 5 per decade: the range is often under a decade.
set format y "%.0f"
set ytics ()
do for [e = 0:7] { set ytics add (10**e, 2 * 10**e, 5 * 10**e) }
set mytics 10
set grid xtics ytics mytics
set key top right box opaque
# ef labels on a white ground, legible where they cross a line.
set style textbox opaque noborder margins 0.5,0.5
# Tight ranges with a margin (plain autoscale would round a log axis out to whole decades).
set autoscale fix
set offsets graph 0.08, graph 0.03, graph 0.10, graph 0.06

isa_title(s) = s eq "avx512" ? "hnswlib, -march=native (AVX-512)" : \
               s eq "avx" ? "hnswlib, -march=native (AVX)" : \
               s eq "sse" ? "hnswlib, no ISA flags (SSE)" : "hnswlib (" . s . ")"

# The labels come last, so that their ground covers the lines.
plot word(files, 1) using 2:3 with linespoints lw 2 pt 7 ps 1.2 lc rgb "#1f77b4" \
         title "Engram", \
     for [i = 1:words(files)] word(files, i) using 4:5 with linespoints lw 2 pt (4 + 2 * i) \
         ps 1.2 dt i lc rgb word("#d62728 #ff7f0e #2ca02c", i) title isa_title(word(isas, i)), \
     word(files, 1) using 2:3:(sprintf("ef=%d", $1)) with labels boxed right offset -0.8,0.6 \
         font ",9" textcolor rgb "#1f77b4" notitle
