#!/bin/bash
# test_man.sh - man/mtps-origin.8, man/mtps-proxy.8 and man/mtps-bench.1 each document exactly
# the options their program's --help lists (both ways, short names included), man/mtps.conf.5
# every key of the proxy's configuration file, and groff formats them without a warning.
# Needs MTPS_ORIGIN, MTPS_PROXY, MTPS_BENCH and MTPS_SRCDIR (see lib.sh).
set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/lib.sh"
require_env
if [ -z "${MTPS_PROXY:-}" ] || [ ! -x "$MTPS_PROXY" ]; then
	printf 'ERROR: set MTPS_PROXY to the built mtps-proxy (now: %s)\n' "${MTPS_PROXY:-unset}"
	exit 99
fi

# check_page NAME PROGRAM [SECTION] - checks man/NAME.SECTION (default 8) against
# `PROGRAM --help`. Every PASS and FAIL line begins with NAME.
check_page() {
	local name=$1 program=$2 page help help_entries options_section man_entries
	local help_longs man_longs missing named unknown diff_short leftover warnings

	page=$MTPS_SRCDIR/man/$name.${3:-8}
	[ -f "$page" ] || fail "$name: no man page at $page"

	run timeout 10 "$program" --help
	expect_status 0 "$name --help"
	help=$RUN_STDOUT

	# The option entries of --help, one "SHORT LONG" per line ("p port", "- max-age"): the
	# lines that begin with "  -p, --port" or "      --max-age".
	help_entries=$(printf '%s\n' "$help" |
		sed -nE 's/^ +(-([A-Za-z0-9]), +)?--([a-z0-9][a-z0-9-]*).*/\2 \3/p' |
		sed 's/^ /- /' | sort -u)
	[ -n "$help_entries" ] || fail "$name: found no options in --help: $help"

	# The OPTIONS section of the man page with "\-" turned into "-", so that the page can
	# spell options the recommended way (\-\-max\-age: minus signs that copy and paste as
	# ASCII).
	options_section=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$page" | sed '$d' | sed 's/\\-/-/g')
	[ -n "$options_section" ] || fail "$name: $page has no .SH OPTIONS section"

	# Its entries: the tag line after each .TP, e.g. ".BR -p \", \" --port \" \" \fIPORT\fR".
	man_entries=$(printf '%s\n' "$options_section" |
		awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' |
		sed -nE 's/^\.[A-Z]+ +(-([A-Za-z0-9])[^-]+)?--([a-z0-9][a-z0-9-]*).*/\2 \3/p' |
		sed 's/^ /- /' | sort -u)
	[ -n "$man_entries" ] ||
		fail "$name: found no .TP option entries in the OPTIONS section of $page"

	help_longs=$(printf '%s\n' "$help_entries" | cut -d' ' -f2 | sort -u)
	man_longs=$(printf '%s\n' "$man_entries" | cut -d' ' -f2 | sort -u)

	# 1. every option of --help has an entry in the man page
	missing=$(comm -23 <(printf '%s\n' "$help_longs") <(printf '%s\n' "$man_longs") |
		tr '\n' ' ')
	[ -z "$missing" ] ||
		fail "$name: options in --help without a .TP entry in the man page's OPTIONS: $missing"
	pass "$name: every option of --help has an entry in OPTIONS ($(printf '%s\n' "$help_longs" | wc -l) options)"

	# 2. every option the man page's OPTIONS section names (entries and cross references)
	# exists
	named=$(printf '%s\n' "$options_section" | grep -oE -- '--[a-z0-9][a-z0-9-]*' |
		sed 's/^--//' | sort -u)
	unknown=$(comm -23 <(printf '%s\n' "$named") <(printf '%s\n' "$help_longs") | tr '\n' ' ')
	[ -z "$unknown" ] ||
		fail "$name: options in the man page's OPTIONS that --help does not list: $unknown"
	pass "$name: every option named in OPTIONS exists in --help"

	# 3. the short names agree ("-p, --port" in both places)
	diff_short=$(diff <(printf '%s\n' "$help_entries") <(printf '%s\n' "$man_entries"))
	[ -z "$diff_short" ] ||
		fail "$name: short options differ between --help (<) and the man page (>): $(printf '%s' "$diff_short" | grep '^[<>]' | tr '\n' ' ')"
	pass "$name: short options agree between --help and the man page"

	# 4. nothing was left for configure or make to substitute
	leftover=$(grep -nE '@[a-z_]+@' "$page")
	[ -z "$leftover" ] || fail "$name: unsubstituted @variable@ in $page: $leftover"
	pass "$name: no @variable@ left in the man page"

	# 5. groff formats it without a warning
	if command -v groff >/dev/null 2>&1; then
		warnings=$(groff -man -ww -Tutf8 "$page" 2>&1 >/dev/null)
		[ -z "$warnings" ] || fail "$name: groff -man -ww warns about $page: $warnings"
		pass "$name: groff -man -ww -Tutf8 prints no warnings"
	else
		printf 'NOTE: groff is not installed: %s was not checked for formatting\n' "$page"
	fi
}

check_page mtps-origin "$MTPS_ORIGIN"
check_page mtps-proxy "$MTPS_PROXY"
if [ -n "${MTPS_BENCH:-}" ]; then
	check_page mtps-bench "$MTPS_BENCH" 1
else
	fail "set MTPS_BENCH to the built mtps-bench"
fi

# check_conf - man/mtps.conf.5 describes exactly the keys of the proxy's configuration file
# (those `mtps-proxy -T` prints: every option that is not command-line only), in its KEYS
# section, and formats without a warning; the installed sample dist/mtps.conf shows every
# key, commented out.
check_conf() {
	local page=$MTPS_SRCDIR/man/mtps.conf.5 sample=$MTPS_SRCDIR/dist/mtps.conf
	local keys man_keys sample_keys missing unknown warnings

	[ -f "$page" ] || fail "mtps.conf: no man page at $page"
	run timeout 10 "$MTPS_PROXY" -T --backend 127.0.0.1:1
	expect_status 0 "mtps-proxy -T"
	keys=$(printf '%s\n' "$RUN_STDOUT" | sed -nE 's/^(# )?([a-z][a-z0-9-]*) .*/\2/p' | sort -u)
	[ -n "$keys" ] || fail "mtps.conf: found no keys in mtps-proxy -T: $RUN_STDOUT"

	man_keys=$(sed -n '/^\.SH KEYS/,/^\.SH /p' "$page" | sed 's/\\-/-/g' |
		awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' |
		sed -nE 's/^\.[A-Z]+ +([a-z][a-z0-9-]*).*/\1/p' | sort -u)
	missing=$(comm -23 <(printf '%s\n' "$keys") <(printf '%s\n' "$man_keys") | tr '\n' ' ')
	[ -z "$missing" ] || fail "mtps.conf: keys without an entry in mtps.conf.5's KEYS: $missing"
	unknown=$(comm -13 <(printf '%s\n' "$keys") <(printf '%s\n' "$man_keys") | tr '\n' ' ')
	[ -z "$unknown" ] || fail "mtps.conf: entries in mtps.conf.5's KEYS that are no key: $unknown"
	pass "mtps.conf: mtps.conf.5 describes every key of the file ($(printf '%s\n' "$keys" | wc -l) keys)"

	sample_keys=$(sed -nE 's/^# ([a-z][a-z0-9-]*) [^ ].*/\1/p' "$sample" | sort -u)
	missing=$(comm -23 <(printf '%s\n' "$keys") <(printf '%s\n' "$sample_keys") | tr '\n' ' ')
	[ -z "$missing" ] || fail "mtps.conf: keys the sample dist/mtps.conf does not show: $missing"
	run timeout 10 "$MTPS_PROXY" -t -c "$sample" --backend 127.0.0.1:1
	expect_status 0 "mtps-proxy -t -c dist/mtps.conf"
	# every key's line uncommented (but those naming users, files and origins)
	run timeout 10 "$MTPS_PROXY" -t -c <(grep -E "^# ($(printf '%s\n' "$keys" | paste -sd'|')) " \
		"$sample" | sed 's/^# //' | grep -vE '^(backend|user|group|pid-file|error-log) ') \
		--backend 127.0.0.1:1
	expect_status 0 "mtps-proxy -t on dist/mtps.conf with its defaults uncommented"
	pass "mtps.conf: the sample shows every key, commented out, and its values parse"

	if command -v groff >/dev/null 2>&1; then
		warnings=$(groff -man -ww -Tutf8 "$page" 2>&1 >/dev/null)
		[ -z "$warnings" ] || fail "mtps.conf: groff -man -ww warns about $page: $warnings"
		pass "mtps.conf: groff -man -ww -Tutf8 prints no warnings"
	fi
}
check_conf

exit 0
