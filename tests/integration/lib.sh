# lib.sh - helpers for the shell integration tests. Source it, do not run it:
#
#     . "$(dirname "$0")/lib.sh"
#
# `make check` runs the tests with MTPS_ORIGIN (absolute path of the built mtps-origin) and
# MTPS_SRCDIR (absolute top source directory) in the environment. By hand:
#
#     MTPS_ORIGIN=$PWD/_build/x/mtps-origin MTPS_SRCDIR=$PWD bash tests/integration/test_options.sh
#
# A test prints one line per check ("PASS: what held") and exits 0, or stops at the first
# failure with "FAIL: what went wrong" and exit status 1 (automake: 77 skip, 99 hard error).
# shellcheck shell=bash disable=SC2034 # RUN_* are read by the tests that source this

# Prints "FAIL: MSG" and ends the test with status 1.
fail() {
	printf 'FAIL: %s\n' "$*"
	exit 1
}

# Prints "PASS: MSG": one line per check that held.
pass() {
	printf 'PASS: %s\n' "$*"
}

# expect_eq ACTUAL EXPECTED WHAT - fails unless the two strings are equal.
expect_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# expect_contains TEXT NEEDLE WHAT - fails unless NEEDLE occurs in TEXT (a fixed string, not
# a pattern).
expect_contains() {
	case $1 in
	*"$2"*) ;;
	*) fail "$3: expected to find '$2' in: $1" ;;
	esac
}

# expect_not_contains TEXT NEEDLE WHAT - fails if NEEDLE occurs in TEXT.
expect_not_contains() {
	case $1 in
	*"$2"*) fail "$3: did not expect '$2' in: $1" ;;
	esac
}

# run COMMAND [ARG]... - runs COMMAND with stdin from /dev/null and sets RUN_STDOUT,
# RUN_STDERR (each without trailing newlines, as $(...) gives them) and RUN_STATUS. Safe
# under `set -e`: a failing COMMAND does not end the test.
run() {
	local out err

	out=$(mktemp) || fail "mktemp failed"
	err=$(mktemp) || { rm -f "$out"; fail "mktemp failed"; }
	RUN_STATUS=0
	"$@" <"/dev/null" >"$out" 2>"$err" || RUN_STATUS=$?
	RUN_STDOUT=$(cat "$out")
	RUN_STDERR=$(cat "$err")
	rm -f "$out" "$err"
}

# expect_status N WHAT - fails unless the last run exited with status N; the message shows
# what the command wrote to stderr.
expect_status() {
	[ "$RUN_STATUS" = "$1" ] ||
		fail "$2: expected exit status $1, got $RUN_STATUS (stderr: ${RUN_STDERR:-nothing})"
}

# require_env - checks MTPS_ORIGIN and MTPS_SRCDIR; exits 99 (a hard error for automake)
# with a hint when they are missing.
require_env() {
	if [ -z "${MTPS_ORIGIN:-}" ] || [ ! -x "$MTPS_ORIGIN" ]; then
		printf 'ERROR: set MTPS_ORIGIN to the built mtps-origin (now: %s)\n' "${MTPS_ORIGIN:-unset}"
		exit 99
	fi
	if [ -z "${MTPS_SRCDIR:-}" ] || [ ! -f "$MTPS_SRCDIR/configure.ac" ]; then
		printf 'ERROR: set MTPS_SRCDIR to the top source directory (now: %s)\n' "${MTPS_SRCDIR:-unset}"
		exit 99
	fi
}
