#!/usr/bin/env bash
# test_dashboard.sh - the admin listener's dashboard in a real browser: Debian's headless
# chromium loads http://ADMIN/ while a client loop keeps the proxy busy, and the page must
# show non-empty charts, one table row per back-end, and no script error (the page copies
# window.onerror into #errors; chromium's console log is checked too). A screenshot is
# saved as dashboard.png in the build folder. Skipped (77) without chromium.
#
# Needs MTPS_ORIGIN, MTPS_PROXY and MTPS_SRCDIR (see lib.sh); CHROMIUM names the browser
# (default: chromium, else chromium-browser).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_env

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
	browser=$(command -v chromium || command -v chromium-browser || true)
fi
if [ -z "$browser" ]; then
	echo "SKIP: no chromium (apt-get install chromium)"
	exit 77
fi
if [ -n "${MTPS_WRAPPER:-}" ]; then
	echo "SKIP: not under $MTPS_WRAPPER: a browser test, not a memory test"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtps-dashboard.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME COMMAND...: starts COMMAND --ready-fd 3 and reads the line it writes there
# once it listens (no sleeping); the words go to $ready.
ready=""
start() {
	local name=$1 fifo=$tmp/$1.ready
	shift
	mkfifo "$fifo"
	"$@" --ready-fd 3 3>"$fifo" </dev/null >"$tmp/$name.log" 2>&1 &
	pids+=("$!")
	read -r -t 60 ready <"$fifo" || { cat "$tmp/$name.log"; fail "$name did not start"; }
}

start origin-a "$MTPS_ORIGIN" --port 0 --threads 2 --max-age 1
port_a=$ready
start origin-b "$MTPS_ORIGIN" --port 0 --threads 2 --max-age 1
port_b=$ready
start proxy "$MTPS_PROXY" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --threads 2 \
	--backend "127.0.0.1:$port_a" --backend "127.0.0.1:$port_b"
read -r port admin <<<"$ready"
[ -n "$admin" ] || fail "the proxy reported no admin port: '$ready'"
pass "proxy on $port, admin listener on $admin"

# a little load until the test ends: hits, misses as entries expire, 404s for ids 6-8
(
	i=0
	while :; do
		curl -s -o /dev/null "http://127.0.0.1:$port/api/users/$((i % 9))" || true
		i=$((i + 1))
	done
) &
pids+=("$!")

builddir=$PWD
dom=$tmp/dom.html
log=$tmp/chromium.log
# Virtual time runs the page's one-second polls without waiting for them in real time.
flags=(--headless --disable-gpu --no-sandbox --no-first-run --disable-extensions
	--user-data-dir="$tmp/profile" --enable-logging=stderr --v=0
	--virtual-time-budget=5000 --window-size=1280,1100)
timeout 120 "$browser" "${flags[@]}" --dump-dom "http://127.0.0.1:$admin/" >"$dom" 2>"$log" ||
	{ tail -20 "$log"; fail "chromium failed"; }
html=$(cat "$dom")
polls=$(grep -o 'data-polls="[0-9]*"' <<<"$html" | grep -o '[0-9]*' || true)
[ -n "$polls" ] && [ "$polls" -ge 3 ] || fail "the page polled /stats ${polls:-0} times, want 3 or more"
pass "the page polled /stats $polls times"

for chart in rps hit latency errors bytes; do
	points=$(grep -o "id=\"chart-$chart\"[^>]*data-points=\"[0-9]*\"" <<<"$html" |
		grep -o 'data-points="[0-9]*"' | grep -o '[0-9]*' || true)
	[ -n "$points" ] && [ "$points" -ge 2 ] || fail "chart $chart has ${points:-no} points"
	grep -q "<polyline points=\"[0-9.]*,[0-9.]* [0-9.]*,[0-9.]*" <<<"$html" ||
		fail "no polyline with two points or more"
done
pass "the five charts have points"

rows=$(grep -o '<tr><td>127\.0\.0\.1:[0-9]*</td><td class="state state-up">up</td>' <<<"$html" |
	wc -l)
expect_eq "$rows" 2 "back-end table rows in state up"
expect_contains "$html" "<td>127.0.0.1:$port_a</td>" "back-end a in the table"
expect_contains "$html" "<td>127.0.0.1:$port_b</td>" "back-end b in the table"
pass "the back-end table lists both back-ends, up"

grep -q '<pre id="errors"></pre>' <<<"$html" ||
	fail "script errors on the page: $(grep -o '<pre id="errors">[^<]*' <<<"$html")"
if grep -E ':CONSOLE\(|Uncaught' "$log"; then
	fail "the browser console has messages (above)"
fi
pass "no script error, no console message"

# The screenshot, for a human to look at: not compared with anything.
timeout 120 "$browser" "${flags[@]}" --screenshot="$builddir/dashboard.png" \
	"http://127.0.0.1:$admin/" >/dev/null 2>&1 || fail "chromium could not take a screenshot"
[ -s "$builddir/dashboard.png" ] || fail "no screenshot"
pass "screenshot in $builddir/dashboard.png"
