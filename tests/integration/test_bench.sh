#!/bin/bash
# test_bench.sh - mtps-bench against real servers on free loopback ports: the load command
# (closed loop, open loop, request count, connect errors, its CSV and JSON files), every
# scenario of `suite --spawn` with small sizes and short steps (their verdicts, every file of
# the report, the SVGs well-formed), `report DIR` alone, and `suite` against servers it did
# not start. Timing is measured but never judged.
# Needs MTPS_BENCH, MTPS_ORIGIN, MTPS_PROXY, MTPS_SRCDIR (see lib.sh); MTPS_DATADIR names
# the gnuplot scripts (bench/plots).
set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/lib.sh"
require_env
for v in MTPS_BENCH MTPS_PROXY; do
	if [ -z "${!v:-}" ] || [ ! -x "${!v}" ]; then
		printf 'ERROR: set %s to the built program (now: %s)\n' "$v" "${!v:-unset}"
		exit 99
	fi
done

tmp=$(mktemp -d) || fail "mktemp -d failed"
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME PROGRAM ARGS... - starts a server with --ready-fd 3 into a FIFO and sets PORT
# once it listens (read waits exactly as long as start-up takes; EOF when it failed).
start() {
	local name=$1 fifo=$tmp/ready-$1 line=""
	shift
	mkfifo "$fifo"
	"$@" --ready-fd 3 3>"$fifo" 2>"$tmp/$name.log" </dev/null &
	pids+=("$!")
	read -r -t 30 line <"$fifo" || fail "$name did not start: $(cat "$tmp/$name.log")"
	PORT=${line%% *}	# mtps-proxy adds its admin port after a space
}

# ---- the command line --------------------------------------------------------------------
run "$MTPS_BENCH" --help
expect_status 0 "--help"
expect_contains "$RUN_STDOUT" "--zipf" "--help"
run "$MTPS_BENCH" -c 0 -u http://127.0.0.1:1/
expect_status 2 "-c 0"
expect_contains "$RUN_STDERR" "connections" "-c 0"
run "$MTPS_BENCH" -u ftp://x/
expect_status 2 "an ftp URL"
expect_contains "$RUN_STDERR" "not an http:// or https:// URL" "an ftp URL"
run "$MTPS_BENCH" -u 'http://h/{9..1}'
expect_status 2 "a reversed pattern"
run "$MTPS_BENCH" --zipf abc -u http://127.0.0.1:1/
expect_status 2 "--zipf abc"
run "$MTPS_BENCH" suite
expect_status 2 "suite without servers"
expect_contains "$RUN_STDERR" "--spawn" "suite without servers"
run "$MTPS_BENCH" suite --spawn --scenarios status,nope
expect_status 2 "an unknown scenario"
expect_contains "$RUN_STDERR" "unknown scenario 'nope'" "an unknown scenario"
run "$MTPS_BENCH" report "$tmp/nothing-here"
expect_status 2 "report of a folder without results"
expect_contains "$RUN_STDERR" "suite.json" "report of a folder without results"
pass "bad command lines are refused with a reason (exit status 2)"

# ---- the load command ----------------------------------------------------------------------
start origin "$MTPS_ORIGIN" --port 0 --name bench-origin
origin=http://127.0.0.1:$PORT
origin_pid=${pids[-1]}

run "$MTPS_BENCH" -u "$origin/api/users/{1..5}" -c 4 -t 2 -n 200 --zipf 1.1 -o "$tmp/load"
expect_status 0 "-n 200"
expect_contains "$RUN_STDOUT" "200 requests in" "-n 200"
expect_contains "$RUN_STDOUT" "Status: 200=200" "-n 200"
expect_contains "$RUN_STDOUT" "X-Served-By: bench-origin=200" "-n 200"
expect_contains "$RUN_STDOUT" "99.9%" "-n 200"
expect_contains "$RUN_STDOUT" "Requests/sec:" "-n 200"
for f in series.csv percentiles.csv results.json; do
	[ -s "$tmp/load/$f" ] || fail "-o: no $f"
done
expect_eq "$(head -n 1 "$tmp/load/series.csv")" \
	"second,responses,bytes,errors,hits,mean_latency_ms" "series.csv header"
expect_eq "$(head -n 1 "$tmp/load/percentiles.csv")" \
	"percentile,all_ms,hit_ms,miss_ms" "percentiles.csv header"
expect_contains "$(tr -d ' \n' <"$tmp/load/results.json")" '"responses":200,' "results.json"
pass "closed loop with a request count: 200 answers, summary, CSV and JSON"

printf '# a comment\n%s/api/test\n%s/health\n' "$origin" "$origin" >"$tmp/urls.txt"
run "$MTPS_BENCH" --urls "$tmp/urls.txt" -R 200 -c 4 -d 500ms
expect_status 0 "-R 200 -d 500ms"
expect_contains "$RUN_STDOUT" "open-loop" "-R 200"
expect_contains "$RUN_STDOUT" "Status: 200=" "-R 200"
expect_not_contains "$RUN_STDOUT" "Socket errors" "-R 200"
pass "open loop at a fixed rate from a URL file"

kill "$origin_pid"
wait "$origin_pid" 2>/dev/null
run "$MTPS_BENCH" -u "$origin/api/test" -c 2 -n 20
expect_status 0 "a stopped server"
expect_contains "$RUN_STDOUT" "Socket errors: connect 20" "a stopped server"
pass "requests to a closed port count as connect errors"

# ---- suite --spawn: every scenario, and the report ----------------------------------------
rep=$tmp/report
run "$MTPS_BENCH" suite --spawn --spawn-origins 2 --latency-ms 5 --large-sizes 64K,3M \
	--sweep 1,4 --step-duration 300ms -c 4 --report "$rep"
printf '%s\n' "$RUN_STDOUT" | sed 's/^/    /'
[ "$RUN_STATUS" = 0 ] || [ "$RUN_STATUS" = 1 ] ||
	fail "suite --spawn: exit status $RUN_STATUS (stderr: $RUN_STDERR)"
for s in status large cache concurrency balance; do
	expect_contains "$RUN_STDOUT" "=> $s PASS" "suite --spawn, scenario $s"
done
expect_contains "$RUN_STDOUT" "64KiB checked byte for byte" "large"
expect_contains "$RUN_STDOUT" "3MiB checked byte for byte" "large"
expect_contains "$RUN_STDOUT" "hit ratio" "cache"
expect_contains "$RUN_STDOUT" "origin-1" "balance"
expect_contains "$RUN_STDOUT" "origin-2" "balance"
expect_contains "$RUN_STDOUT" "restarted origin-1" "balance"
expect_contains "$RUN_STDOUT" "back in rotation" "balance"
pass "suite --spawn: status, large, cache, concurrency and balance pass"

# crud's check is strict: a read after a write that shows the old data is a FAIL. The proxy
# invalidates after unsafe methods (RFC 9111 §4.4), so every read shows the write.
case $RUN_STDOUT in
*"=> crud PASS"*)
	expect_eq "$RUN_STATUS" 0 "exit status with every scenario passing"
	pass "crud: every read after a write through the proxy showed the write" ;;
*) fail "crud: no PASS in: $RUN_STDOUT" ;;
esac

for f in report.html suite.json large.csv cache_latency.csv timeseries.csv concurrency.csv \
	backends.csv; do
	[ -s "$rep/$f" ] || fail "report: no $f"
done
expect_contains "$(cat "$rep/report.html")" "Findings" "report.html"
expect_contains "$(cat "$rep/report.html")" "faster at p50" "report.html"
pass "report: report.html, suite.json and the CSV files"

charts="latency hitmiss throughput concurrency backends large"
if command -v "${MTPS_GNUPLOT:-gnuplot}" >/dev/null 2>&1; then
	for c in $charts; do
		[ -s "$rep/$c.svg" ] || fail "report: no $c.svg (gnuplot: $(cat "$rep/gnuplot.log"))"
		grep -q "<svg" "$rep/$c.svg" || fail "$c.svg is not SVG"
	done
	n=$(grep -o '<svg' "$rep/report.html" | wc -l)
	expect_eq "$n" 6 "SVG charts inline in report.html"
	expect_not_contains "$(cat "$rep/report.html")" "<?xml" "report.html (no XML prolog inside)"
	pass "report: the six charts as SVG, inline in report.html"
	if command -v xmllint >/dev/null 2>&1; then
		for c in $charts; do
			xmllint --noout "$rep/$c.svg" 2>"$tmp/xmllint" ||
				fail "$c.svg is not well-formed XML: $(cat "$tmp/xmllint")"
		done
		pass "report: every SVG is well-formed XML (xmllint)"
	else
		printf 'NOTE: xmllint is not installed: the SVGs were not parsed\n'
	fi

	rm -f "$rep"/*.svg "$rep"/*.png "$rep/report.html"
	run "$MTPS_BENCH" report "$rep"
	expect_status 0 "report DIR"
	expect_contains "$RUN_STDOUT" "Report: $rep/report.html" "report DIR"
	for c in $charts; do
		[ -s "$rep/$c.svg" ] || fail "report DIR: no $c.svg"
	done
	[ -s "$rep/report.html" ] || fail "report DIR: no report.html"
	pass "report DIR draws the charts and writes report.html again from the files"
else
	printf 'NOTE: gnuplot is not installed: the charts were not checked\n'
fi

# ---- a suite killed midway leaves no server behind ------------------------------------------
"$MTPS_BENCH" suite --spawn --spawn-origins 2 --scenarios balance --step-duration 10s \
	>"$tmp/killed.out" 2>&1 </dev/null &
bench=$!
for _ in $(seq 200); do	# up to 20 s for it to start its servers
	grep -q '^started' "$tmp/killed.out" && break
	sleep 0.1
done
grep -q '^started' "$tmp/killed.out" || fail "suite --spawn did not start: $(cat "$tmp/killed.out")"
children=$(cat /proc/"$bench"/task/*/children 2>/dev/null)
[ -n "$children" ] || fail "suite --spawn: no child processes found"
kill -KILL "$bench"
wait "$bench" 2>/dev/null
left=$children
for _ in $(seq 100); do	# up to 10 s for them to stop
	left=""
	for c in $children; do
		kill -0 "$c" 2>/dev/null && left="$left $c"
	done
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || { kill -KILL $left; fail "servers left running after the suite was killed:$left"; }
pass "a suite killed midway takes the servers it started with it"

# ---- suite against servers it did not start -------------------------------------------------
start origin2 "$MTPS_ORIGIN" --port 0 --name solo
o2=http://127.0.0.1:$PORT
start proxy "$MTPS_PROXY" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --backend "127.0.0.1:$PORT"
px=http://127.0.0.1:$PORT
run "$MTPS_BENCH" suite --proxy "$px" --origin "$o2" --scenarios status,balance,crud \
	--step-duration 200ms -c 2
printf '%s\n' "$RUN_STDOUT" | sed 's/^/    /'
expect_contains "$RUN_STDOUT" "=> status PASS" "suite --proxy --origin"
expect_contains "$RUN_STDOUT" "=> balance PASS" "suite --proxy --origin"
expect_contains "$RUN_STDOUT" "needs --spawn" "suite --proxy --origin"
expect_contains "$RUN_STDOUT" "solo" "suite --proxy --origin"
expect_contains "$RUN_STDOUT" "through $px" "crud through the proxy with one origin"
expect_not_contains "$RUN_STDOUT" "[large]" "--scenarios"
pass "suite --proxy URL --origin URL: status, balance (distribution only) and crud"

exit 0
