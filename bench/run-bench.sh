#!/bin/bash
# run-bench.sh - `make bench`: mtps-proxy's fresh-hit path next to the libmicrohttpd ceiling.
#
# Runs, one after another, each server pinned to core 0 with one worker thread and wrk pinned
# to core 1 (64 keep-alive connections), for 1 KiB and 1 MiB bodies:
#   reference  bench/mtps-refserver: one prebuilt response, the ceiling for libmicrohttpd
#   proxy      mtps-proxy answering fresh hits (its cache warmed by one request)
#   origin     mtps-origin itself, generating every body
#   proxy-lru  the proxy again with --eviction lru (only when BENCH_CASES names it)
# For each it prints requests/s, transfer/s, p50, p99, errors, the connections the server
# closed (none when keep-alive held) and the server's CPU microseconds per request (utime +
# stime of the whole process from /proc/PID/stat, divided by wrk's completed requests); then
# the ratios that issue 3 sets targets for. The results also go to bench-results.csv in the
# current directory.
#
# Last, with no server, bench/mtps-cache-compare replays one synthetic Zipf trace against the
# proxy's store with SIEVE and with LRU eviction (on both cores) and prints, per policy and
# store size, the hit ratios and the lookups + inserts per second with one and two threads
# (1,000,000 requests: 10-20 s; see its --help).
#
# A benchmark, not a test: it exits 0 whenever everything ran, whether the targets were met or
# not; 77 when a tool is missing (wrk, taskset, curl, ss) or there are fewer than two cores; 1
# when a server did not start, wrk failed or mtps-cache-compare failed.
#
# Environment:
#   MTPS_REFSERVER MTPS_ORIGIN MTPS_PROXY MTPS_CACHE_COMPARE   the programs (default:
#                                           ./bench/mtps-refserver, ./mtps-origin,
#                                           ./mtps-proxy, ./bench/mtps-cache-compare, for a
#                                           build dir); a MTPS_CACHE_COMPARE that is not
#                                           executable skips the store's comparison
#   BENCH_SECONDS=10        length of each wrk run
#   BENCH_CONNECTIONS=64    wrk's connections
#   BENCH_SIZES="1024 1048576"              body sizes in bytes
#   BENCH_CASES="reference proxy origin"    which cases run, in this order
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1   the cores for the server and for wrk
#   BENCH_REF_ARGS BENCH_PROXY_ARGS BENCH_ORIGIN_ARGS   extra options for each server
#                                           (e.g. BENCH_REF_ARGS="--conn-memory 8K")
#   BENCH_CACHE_ARGS        options for mtps-cache-compare after "--requests 1000000"
#                                           (e.g. "--zipf 1.1 --requests 4000000")
#   BENCH_RESULTS=bench-results.csv
# Options: --no-proxy skips the proxy cases (as does a $MTPS_PROXY that is not executable).

# The case_* functions are called by name, from BENCH_CASES.
# shellcheck disable=SC2317
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u

refserver=${MTPS_REFSERVER:-./bench/mtps-refserver}
origin=${MTPS_ORIGIN:-./mtps-origin}
proxy=${MTPS_PROXY:-./mtps-proxy}
cache_compare=${MTPS_CACHE_COMPARE:-./bench/mtps-cache-compare}
seconds=${BENCH_SECONDS:-10}
connections=${BENCH_CONNECTIONS:-64}
sizes=${BENCH_SIZES:-1024 1048576}
cases=${BENCH_CASES:-reference proxy origin}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}
results=${BENCH_RESULTS:-bench-results.csv}
skip_proxy=""
read -ra ref_args <<<"${BENCH_REF_ARGS:-}"
read -ra proxy_args <<<"${BENCH_PROXY_ARGS:-}"
read -ra origin_args <<<"${BENCH_ORIGIN_ARGS:-}"
read -ra cache_args <<<"${BENCH_CACHE_ARGS:-}"

say() { printf '%s\n' "$*"; }
warn() { printf 'run-bench: %s\n' "$*" >&2; }
die() { warn "$*"; exit 1; }
skip() { warn "$*"; exit 77; }

while [ $# -gt 0 ]; do
	case $1 in
	--no-proxy) skip_proxy="--no-proxy given" ;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
	shift
done

command -v wrk >/dev/null ||
	skip "wrk is not installed: apt-get install wrk (Debian/Ubuntu), then run make bench again"
command -v taskset >/dev/null ||
	skip "taskset is not installed: apt-get install util-linux"
command -v curl >/dev/null ||
	skip "curl is not installed: apt-get install curl"
command -v ss >/dev/null ||
	skip "ss is not installed: apt-get install iproute2"
taskset -c "$server_cpu,$client_cpu" true 2>/dev/null ||
	skip "cannot pin to cores $server_cpu and $client_cpu: the bench needs two cores" \
		"(set BENCH_SERVER_CPU and BENCH_CLIENT_CPU)"
for prog in "$refserver" "$origin"; do
	[ -x "$prog" ] || die "$prog is not built (run make first)"
done
if [ -z "$skip_proxy" ] && [ ! -x "$proxy" ]; then
	skip_proxy="$proxy is not executable"
fi
clk_tck=$(getconf CLK_TCK)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtps-bench.XXXXXX") || die "cannot create a temporary directory"
pids=()

cleanup() {
	local pid

	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- servers --------------------------------------------------------------------------------

# start_server NAME COMMAND...: starts COMMAND --ready-fd 3 with fd 3 on a FIFO and returns once
# it listens, with its pid in $server_pid and its port in $server_port. The server writes its
# port to the FIFO when it accepts connections; one that fails closes the FIFO unwritten and
# read sees EOF, so nothing here sleeps or polls. COMMAND may start with "taskset -c N": that
# execs the server, so the pid is the server's. Returns 1 after printing the log on failure.
server_pid="" server_port=""
start_server() {
	local name=$1 fifo=$tmp/$1.ready log=$tmp/$1.log

	shift
	rm -f "$fifo"
	mkfifo "$fifo" || return 1
	"$@" --ready-fd 3 3>"$fifo" </dev/null >"$log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	server_port=""
	# the proxy writes "PORT ADMIN_PORT": the first word is the port
	if ! read -r -t 30 server_port _ <"$fifo" || [ -z "$server_port" ]; then
		warn "$name did not start: $*"
		sed 's/^/    /' "$log" >&2
		stop_server "$server_pid"
		return 1
	fi
}

# forget_pid PID: takes PID off the list that cleanup() stops.
forget_pid() {
	local i

	for i in "${!pids[@]}"; do
		[ "${pids[$i]}" = "$1" ] && unset 'pids[i]'
	done
}

# stop_server PID: SIGTERM, then waits for it to exit.
stop_server() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	forget_pid "$1"
}

# ---- measuring ------------------------------------------------------------------------------

# Prints utime + stime of process $1 (all its threads) in clock ticks. The fields are counted
# after the ")" that ends the command name, which may itself hold spaces.
cpu_ticks() {
	local stat

	stat=$(cat "/proc/$1/stat") || return 1
	stat=${stat##*) }
	awk '{ print $12 + $13 }' <<<"$stat"
}

# Prints the CPU ticks (cutime + cstime) of this shell's children that have exited and been
# waited for: the difference around one `wait` is that child's.
child_ticks() {
	local stat

	stat=$(cat "/proc/$$/stat") || return 1
	stat=${stat##*) }
	awk '{ print $14 + $15 }' <<<"$stat"
}

# Prints <ticks> as a percentage of one core over a run (at least 0).
busy_percent() {
	awk -v t="$1" -v hz="$clk_tck" -v s="$seconds" \
		'BEGIN { p = t / hz / s * 100; printf "%.0f\n", p < 0 ? 0 : p }'
}

# Prints the ticks core $1 spent running processes (user, nice, system) from /proc/stat:
# interrupt and softirq time is left out, since much of it is the benchmark's own traffic.
core_busy_ticks() {
	awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4 }' /proc/stat
}

# Prints how many connections the server on port $1 has closed lately: its TIME-WAIT sockets
# (the side that closes a connection first keeps it for 60 s). wrk does not count a connection
# the server closed as an error, it opens another one, so this is where a broken keep-alive
# shows. Ports are picked afresh for each server, so earlier runs do not add to it.
server_closed() {
	ss -Htan state time-wait "( sport = :$1 )" | wc -l
}

# Converts wrk's "412.00us", "1.20ms", "2.00s", "1.50m" to milliseconds.
to_ms() {
	awk -v t="$1" 'BEGIN {
		v = t + 0; u = t; sub(/^[0-9.]+/, "", u)
		f = -1
		if (u == "us") f = 0.001; else if (u == "ms") f = 1; else if (u == "s") f = 1000
		else if (u == "m") f = 60000; else if (u == "h") f = 3600000
		if (f < 0) print "nan"; else printf "%.3f\n", v * f }'
}

# Converts wrk's "26.00MB", "512.00B", "1.50GB" (powers of 1024) to bytes.
to_bytes() {
	awk -v t="$1" 'BEGIN {
		v = t + 0; u = t; sub(/^[0-9.]+/, "", u)
		f = -1
		if (u == "B") f = 1; else if (u == "KB") f = 2^10; else if (u == "MB") f = 2^20
		else if (u == "GB") f = 2^30; else if (u == "TB") f = 2^40
		if (f < 0) print "nan"; else printf "%.0f\n", v * f }'
}

# Results by "case size": requests/s, bytes/s, p50, p99 (ms), CPU us/request, errors,
# connections the server closed, and how busy other processes kept either core (percent).
declare -A rps bps p50 p99 cpu errors closed other

# measure CASE SIZE PORT PATH PID: runs wrk against 127.0.0.1:PORT/PATH while sampling the CPU
# time of server PID, prints a table row and appends a CSV row. Returns 1 when wrk failed or
# the server died.
measure() {
	local name=$1 size=$2 port=$3 url="http://127.0.0.1:$3$4" pid=$5 key="$1 $2" out
	local t0 t1 w0 w1 busy0 busy1 cbusy0 cbusy1 server_other client_other
	local wrk_pid wrk_status requests socket_errors non2xx

	busy0=$(core_busy_ticks "$server_cpu")
	cbusy0=$(core_busy_ticks "$client_cpu")
	w0=$(child_ticks)
	if ! t0=$(cpu_ticks "$pid"); then
		warn "$name $size: the server exited before the run"
		return 1
	fi
	taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" --latency "$url" \
		>"$tmp/wrk.out" 2>&1 &
	wrk_pid=$!
	pids+=("$wrk_pid")
	wait "$wrk_pid"
	wrk_status=$?
	forget_pid "$wrk_pid"
	out=$(cat "$tmp/wrk.out")
	if [ "$wrk_status" -ne 0 ] || ! t1=$(cpu_ticks "$pid"); then
		warn "$name $size: wrk or the server failed:"
		sed 's/^/    /' <<<"$out" >&2
		return 1
	fi
	w1=$(child_ticks)
	busy1=$(core_busy_ticks "$server_cpu")
	cbusy1=$(core_busy_ticks "$client_cpu")
	closed[$key]=$(server_closed "$port")

	requests=$(awk '/ requests in / { print $1 }' <<<"$out")
	socket_errors=$(awk -F'[ ,]+' '/Socket errors:/ { print $5 + $7 + $9 + $11 }' <<<"$out")
	non2xx=$(awk -F: '/Non-2xx or 3xx responses:/ { print $2 + 0 }' <<<"$out")
	errors[$key]=$((${socket_errors:-0} + ${non2xx:-0}))
	rps[$key]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	bps[$key]=$(to_bytes "$(awk '/^Transfer\/sec:/ { print $2 }' <<<"$out")")
	p50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
	p99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
	if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
		warn "$name $size: wrk completed no request:"
		sed 's/^/    /' <<<"$out" >&2
		return 1
	fi
	cpu[$key]=$(awk -v d=$((t1 - t0)) -v hz="$clk_tck" -v n="$requests" \
		'BEGIN { printf "%.2f\n", d * 1e6 / hz / n }')
	# what else ran on the two cores meanwhile: it skews the comparison
	server_other=$(busy_percent $((busy1 - busy0 - (t1 - t0))))
	client_other=$(busy_percent $((cbusy1 - cbusy0 - (w1 - w0))))
	other[$key]=$((server_other > client_other ? server_other : client_other))

	printf '%-10s %8s %10.0f %11s %8.3f %8.3f %10.2f %7s %6s %6s%%\n' "$name" "$size" \
		"${rps[$key]}" "$(human_bytes "${bps[$key]}")/s" "${p50[$key]}" "${p99[$key]}" \
		"${cpu[$key]}" "${errors[$key]}" "${closed[$key]}" "${other[$key]}"
	printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$name" "$size" "${rps[$key]}" "${bps[$key]}" \
		"${p50[$key]}" "${p99[$key]}" "${cpu[$key]}" "${errors[$key]}" >>"$results"
}

human_bytes() {
	awk -v b="$1" 'BEGIN { split("B KiB MiB GiB", u, " "); i = 1
		while (b >= 1024 && i < 4) { b /= 1024; i++ } printf "%.1f%s\n", b, u[i] }'
}

# ---- cases: one function each; case_NAME SIZE starts its servers, measures, stops them ----

case_reference() {
	local size=$1 pid status

	start_server refserver taskset -c "$server_cpu" "$refserver" --listen 127.0.0.1:0 \
		--threads 1 --size "$size" "${ref_args[@]}" || return 1
	pid=$server_pid
	measure reference "$size" "$server_port" "/api/large?size=$size" "$pid"
	status=$?
	stop_server "$pid"
	return "$status"
}

# case_proxy SIZE [NAME PROXY-OPTION...]: the proxy's fresh-hit path. An origin (on the
# client's core: it serves one request) fills the cache with one request; a second one must
# come back X-Cache: HIT. NAME and the options let a variant reuse this, as case_proxy_lru
# does.
case_proxy() {
	local size=$1 name=${2:-proxy} origin_pid proxy_pid proxy_port url hit status

	shift $(($# < 2 ? $# : 2))
	start_server origin taskset -c "$client_cpu" "$origin" --port 0 --threads 1 \
		"${origin_args[@]}" || return 1
	origin_pid=$server_pid
	if ! start_server proxy taskset -c "$server_cpu" "$proxy" --listen 127.0.0.1:0 \
		--admin 127.0.0.1:0 --backend "127.0.0.1:$server_port" --threads 1 "$@" "${proxy_args[@]}"; then
		stop_server "$origin_pid"
		return 1
	fi
	proxy_pid=$server_pid
	proxy_port=$server_port
	url="http://127.0.0.1:$proxy_port/api/large?size=$size"
	curl -sS --max-time 30 -o /dev/null "$url" &&
		hit=$(curl -sS --max-time 30 -o /dev/null -D - "$url" |
			tr -d '\r' | sed -n 's/^X-Cache: *//Ip')
	if [ "${hit:-}" != HIT ]; then
		warn "$name $size: the second request was not a hit (X-Cache: ${hit:-none})"
	fi
	measure "$name" "$size" "$proxy_port" "/api/large?size=$size" "$proxy_pid"
	status=$?
	stop_server "$proxy_pid"
	stop_server "$origin_pid"
	return "$status"
}

# case_proxy_lru SIZE: the same with LRU eviction; "proxy-lru" in BENCH_CASES runs it. Not by
# default: with one hot key the policies differ only in the hit's queue lock, and the store's
# comparison at the end measures that, and the hit ratios, without HTTP around it.
case_proxy_lru() {
	case_proxy "$1" proxy-lru --eviction lru
}

case_origin() {
	local size=$1 pid status

	start_server origin taskset -c "$server_cpu" "$origin" --port 0 --threads 1 \
		"${origin_args[@]}" || return 1
	pid=$server_pid
	measure origin "$size" "$server_port" "/api/large?size=$size" "$pid"
	status=$?
	stop_server "$pid"
	return "$status"
}

# ---- report ---------------------------------------------------------------------------------

# ratio CASE-A CASE-B SIZE ARRAY: prints ARRAY[A SIZE] / ARRAY[B SIZE], or nothing when either
# is missing.
ratio() {
	local -n values=$4
	local a=${values[$1 $3]:-} b=${values[$2 $3]:-}

	[ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f\n", a / b }'
}

# verdict VALUE OP LIMIT: PASS or MISS-TARGET (OP is "<=", "<" or ">=").
verdict() {
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = op == "<=" ? v <= l : op == "<" ? v < l : v >= l
		print ok ? "PASS" : "MISS-TARGET" }'
}

# target LABEL VALUE UNIT OP LIMIT: one line of the summary; VALUE empty = not measured.
target() {
	if [ -z "$2" ]; then
		printf '  %-44s %10s\n' "$1" "n/a"
	else
		printf '  %-44s %9s%-2s (target %s %s%s)  %s\n' "$1" "$2" "$3" "$4" "$5" "$3" \
			"$(verdict "$2" "$4" "$5")"
	fi
}

# keepalive CASE SIZE: keep-alive held when wrk saw no error and the server closed no
# connection.
keepalive() {
	local key="$1 $2" held

	[ -n "${errors[$key]:-}" ] || return 0
	held=$(verdict $((errors[$key] + closed[$key])) "<=" 0)
	printf '  %-44s %5s errors, %s closed by the server  %s\n' "$2 B $1: keep-alive" \
		"${errors[$key]}" "${closed[$key]}" "$held"
}

info_line() {
	[ -n "$2" ] && printf '  %-44s %9s%s\n' "$1" "$2" "$3"
}

for name in $cases; do
	declare -F "case_${name//-/_}" >/dev/null || die "unknown case '$name' in BENCH_CASES"
done

say "mtps bench: servers on core $server_cpu (1 thread), wrk on core $client_cpu:" \
	"$connections keep-alive connections, ${seconds}s per run"
say "$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2), $(nproc) cores," \
	"libmicrohttpd $(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')"
if [ -n "${BENCH_REF_ARGS:-}${BENCH_PROXY_ARGS:-}${BENCH_ORIGIN_ARGS:-}" ]; then
	say "extra options: reference '${BENCH_REF_ARGS:-}', proxy '${BENCH_PROXY_ARGS:-}'," \
		"origin '${BENCH_ORIGIN_ARGS:-}'"
fi
[ -n "$skip_proxy" ] && say "proxy not built: skipped ($skip_proxy)"
say ""
printf '%-10s %8s %10s %11s %8s %8s %10s %7s %6s %7s\n' case size req/s transfer/s \
	"p50 ms" "p99 ms" "cpu us/req" errors closed "other"
printf 'case,size,rps,transfer_bytes_s,p50_ms,p99_ms,cpu_us_per_req,errors\n' >"$results"

failed=0
for name in $cases; do
	case $name in
	proxy*) [ -n "$skip_proxy" ] && continue ;;
	esac
	for size in $sizes; do
		"case_${name//-/_}" "$size" || failed=1
	done
done

say ""
say "errors: wrk's socket errors and non-2xx answers; closed: connections the server closed"
say "(0: keep-alive held); other: how busy other processes kept the server's or wrk's core"
say "(percent, the larger of the two)"
for key in "${!other[@]}"; do
	if [ "${other[$key]}" -gt 10 ]; then
		say "WARNING: other processes kept the cores busy during some runs (column other):"
		say "         those numbers are not reliable; run again on a quiet machine"
		break
	fi
done
say ""
say "Targets (issue 3), proxy fresh hit against the reference server:"
target "1 KiB: CPU per request, proxy / reference" "$(ratio proxy reference 1024 cpu)" x "<=" 1.3
target "1 KiB: p99 latency, proxy" "${p99[proxy 1024]:-}" " ms" "<" 2
target "1 MiB: bytes/s, proxy / reference" "$(ratio proxy reference 1048576 bps)" x ">=" 0.9
for name in $cases; do
	for size in $sizes; do
		keepalive "$name" "$size"
	done
done
say "For scale:"
info_line "1 KiB: CPU per request, origin / reference" "$(ratio origin reference 1024 cpu)" x
info_line "1 MiB: CPU per request, origin / reference" "$(ratio origin reference 1048576 cpu)" x
info_line "1 MiB: CPU per request, proxy / reference" "$(ratio proxy reference 1048576 cpu)" x
info_line "1 KiB: requests/s, proxy / reference" "$(ratio proxy reference 1024 rps)" x
info_line "1 KiB: requests/s, origin / reference" "$(ratio origin reference 1024 rps)" x
info_line "1 MiB: bytes/s, origin / reference" "$(ratio origin reference 1048576 bps)" x
say "Results written to $results"

# ---- the store alone: SIEVE against LRU ---------------------------------------------------------

say ""
if [ ! -x "$cache_compare" ]; then
	say "cache store comparison skipped: $cache_compare is not executable"
elif ! taskset -c "$server_cpu,$client_cpu" "$cache_compare" --requests 1000000 \
	"${cache_args[@]}"; then
	warn "$cache_compare failed"
	failed=1
fi
exit "$failed"
