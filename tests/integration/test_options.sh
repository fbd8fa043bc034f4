#!/bin/bash
# test_options.sh - mtps-origin's command line and config file, without serving anything:
# --help, --version, -T, bad options and values, and config file errors with FILE:LINE.
# Needs MTPS_ORIGIN and MTPS_SRCDIR (see lib.sh).
set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/lib.sh"
require_env

tmp=$(mktemp -d) || fail "mktemp -d failed"
trap 'rm -rf "$tmp"' EXIT

# Every run is bounded: if an option that should stop mtps-origin early did not, the server
# would otherwise wait for a signal forever.
# shellcheck disable=SC2317 # called through run "$@"
origin() {
	timeout 10 "$MTPS_ORIGIN" "$@"
}

# expect_usage_error WHAT NEEDLE ARG... - the arguments are refused with exit status 2, a
# message on stderr that contains NEEDLE, and nothing on stdout.
expect_usage_error() {
	local what=$1 needle=$2

	shift 2
	run origin "$@"
	expect_status 2 "$what"
	expect_contains "$RUN_STDERR" "$needle" "$what"
	expect_eq "$RUN_STDOUT" "" "$what: stdout"
	pass "$what exits 2 with: $RUN_STDERR"
}

# expect_setting WHAT LINE ARG... - `mtps-origin ARG... -T` succeeds and prints LINE.
expect_setting() {
	local what=$1 line=$2

	shift 2
	run origin "$@" -T
	expect_status 0 "$what"
	printf '%s\n' "$RUN_STDOUT" | grep -qxF -- "$line" ||
		fail "$what: expected the line '$line' in -T output: $RUN_STDOUT"
}

# conf NAME - writes stdin to $tmp/NAME and prints the path.
conf() {
	cat >"$tmp/$1" || fail "cannot write $tmp/$1"
	printf '%s\n' "$tmp/$1"
}

# ---- --help and --version -------------------------------------------------------------

run origin --help
expect_status 0 "--help"
expect_contains "$RUN_STDOUT" "Usage: mtps-origin" "--help"
for opt in --port --bind --name --max-age --max-body --drain-timeout --config --print-config \
	--help --version; do
	expect_contains "$RUN_STDOUT" "$opt" "--help lists $opt"
done
expect_eq "$RUN_STDERR" "" "--help: stderr"
help=$RUN_STDOUT
pass "--help exits 0 and lists the options"

run origin -h
expect_status 0 "-h"
expect_eq "$RUN_STDOUT" "$help" "-h prints the same as --help"
pass "-h is --help"

run origin --version
expect_status 0 "--version"
[[ $RUN_STDOUT =~ ^mtps-origin\ \(mtps\)\ [0-9]+\.[0-9]+\.[0-9]+[^[:space:]]*$ ]] ||
	fail "--version: expected 'mtps-origin (mtps) X.Y.Z', got '$RUN_STDOUT'"
version=$RUN_STDOUT
run origin -V
expect_status 0 "-V"
expect_eq "$RUN_STDOUT" "$version" "-V"
pass "--version and -V print '$version' and exit 0"

# ---- command line errors --------------------------------------------------------------

expect_usage_error "unknown long option" "'--no-such-option'" --no-such-option
expect_usage_error "unknown short option" "'-x'" -x
expect_usage_error "stray argument" "'stray'" stray
expect_usage_error "--port 70000" "for port: must be 0..65535" --port 70000
expect_usage_error "--port -1" "'-1' for port" --port -1
expect_usage_error "--port abc" "'abc' for port" --port abc
expect_usage_error "--max-body lots" "'lots' for max-body" --max-body lots
expect_usage_error "--max-body 2G (over its 1G limit)" "'2G' for max-body" --max-body 2G
expect_usage_error "--max-age 1.5" "'1.5' for max-age" --max-age 1.5
expect_usage_error "--timeout 0 (under its 1 s minimum)" "'0' for timeout" --timeout 0
expect_usage_error "--log-level loud" "'loud' for log-level" --log-level loud
expect_usage_error "--port without a value" "'--port' needs a value" --port
expect_usage_error "--help=yes" "'--help' takes no value" --help=yes
expect_usage_error "-c /nonexistent" "/nonexistent: cannot open" -c /nonexistent
expect_usage_error "-c DIRECTORY" "$tmp" -c "$tmp"

# ---- -T: effective settings -----------------------------------------------------------

run origin -T
expect_status 0 "-T"
defaults=$RUN_STDOUT
for line in 'port 3000' 'bind "127.0.0.1"' '# name (unset)' 'threads 0' 'max-age 1m' \
	'large-max-age 1d' 'latency-ms 0' 'seed-users 5' 'max-users 100000' \
	'max-body 1M' 'max-large 64G' 'max-connections 1024' 'timeout 1m' \
	'drain-timeout 10s' 'log-level "info"'; do
	printf '%s\n' "$defaults" | grep -qxF -- "$line" ||
		fail "-T: expected the default line '$line' in: $defaults"
done
for key in ready-fd config print-config help version; do
	printf '%s\n' "$defaults" | grep -q -- "^$key " &&
		fail "-T prints the command-line-only option $key"
done
pass "-T prints the defaults, without the command-line-only options"

# every key -T prints is a long option of --help, and -T reads back as a config file
while read -r key _; do
	[ "$key" = "#" ] && continue
	expect_contains "$help" "--$key " "-T key $key in --help"
done <<<"$defaults"
printf '%s\n' "$defaults" >"$tmp/roundtrip.conf"
run origin -c "$tmp/roundtrip.conf" -T
expect_status 0 "-T output read back with -c"
expect_eq "$RUN_STDOUT" "$defaults" "-T output read back with -c"
pass "-T output is config file syntax: read back, it gives the same settings"

expect_setting "--port=4001" "port 4001" --port=4001
expect_setting "-p4002" "port 4002" -p4002
expect_setting "-p 4003" "port 4003" -p 4003
expect_setting "last --port wins" "port 4005" --port 4004 --port 4005
expect_setting "--max-body 64K" "max-body 64K" --max-body 64K
expect_setting "--max-large 2GiB" "max-large 2G" --max-large 2GiB
expect_setting "--max-age 5m" "max-age 5m" --max-age 5m
expect_setting "--drain-timeout 1500ms" "drain-timeout 1500ms" --drain-timeout 1500ms
expect_setting "--name with a space" 'name "origin a"' --name "origin a"
pass "-T shows command-line values in every option form, with units converted"

# ---- config file errors: one per file, each on a known line -----------------------------

# expect_file_error WHAT FILE LINE MESSAGE - `-c FILE -T` exits 2 with "FILE:LINE: MESSAGE".
expect_file_error() {
	local what=$1 file=$2 line=$3 message=$4

	run origin -c "$file" -T
	expect_status 2 "config file with $what"
	expect_contains "$RUN_STDERR" "$file:$line: $message" "config file with $what"
	expect_eq "$RUN_STDOUT" "" "config file with $what: stdout"
	pass "config file with $what exits 2 with: $RUN_STDERR"
}

f=$(conf unknown.conf <<'EOF'
# a comment, then a blank line

no-such-key 1
EOF
)
expect_file_error "an unknown key" "$f" 3 "unknown key 'no-such-key'"

f=$(conf badvalue.conf <<'EOF'
max-age 30
port 70000
EOF
)
expect_file_error "a bad value" "$f" 2 "bad value '70000' for port"

f=$(conf badsize.conf <<'EOF'
# sizes take K, M, G or T
max-body lots
EOF
)
expect_file_error "a bad size" "$f" 2 "bad value 'lots' for max-body"

f=$(conf duplicate.conf <<'EOF'
port 5000
max-age 30

port 5001
EOF
)
expect_file_error "a duplicate key" "$f" 4 "'port' is already set on line 1"

f=$(conf novalue.conf <<'EOF'
port 5000
max-age
EOF
)
expect_file_error "a missing value" "$f" 2 "'max-age' needs a value"

f=$(conf unterminated.conf <<'EOF'
port 5000
# the quote below is never closed
name "origin a
EOF
)
expect_file_error "an unterminated quote" "$f" 3 "unterminated quoted value"

f=$(conf afterquote.conf <<'EOF'
name "origin a" b
EOF
)
expect_file_error "text after a quoted value" "$f" 1 "unexpected text after the quoted value"

f=$(conf readyfd.conf <<'EOF'
port 5000
ready-fd 3
EOF
)
expect_file_error "the command-line-only key ready-fd" "$f" 2 "'ready-fd' can only be given on the command line"

f=$(conf config.conf <<'EOF'
config /etc/other.conf
EOF
)
expect_file_error "the command-line-only key config" "$f" 1 "'config' can only be given on the command line"

# ---- a valid config file -----------------------------------------------------------------

f=$(conf good.conf <<'EOF'
# mtps-origin test settings

port 5000
  bind	"::1"
name "origin a # not a comment"   # but this is
max-age 5m   # five minutes
max-body 64K
latency-ms 250
log-level debug
EOF
)
run origin -c "$f" -T
expect_status 0 "valid config file"
for line in 'port 5000' 'bind "::1"' 'name "origin a # not a comment"' 'max-age 5m' \
	'max-body 64K' 'latency-ms 250' 'log-level "debug"' 'threads 0'; do
	printf '%s\n' "$RUN_STDOUT" | grep -qxF -- "$line" ||
		fail "valid config file: expected '$line' in -T output: $RUN_STDOUT"
done
pass "a valid config file's values (quotes, comments, tabs, units) show in -T"

expect_setting "-c FILE --port 4000" "port 4000" -c "$f" --port 4000
expect_setting "--port 4000 -c FILE" "port 4000" --port 4000 -c "$f"
expect_setting "-c FILE --max-age 7" "max-age 7s" -c "$f" --max-age 7
expect_setting "the file's other values stay" "latency-ms 250" -c "$f" --port 4000
pass "the command line wins over the file, wherever -c stands"

f=$(conf empty.conf </dev/null)
run origin -c "$f" -T
expect_status 0 "empty config file"
expect_eq "$RUN_STDOUT" "$defaults" "empty config file"
pass "an empty config file leaves the defaults"

run origin -c "$MTPS_SRCDIR/dist/mtps-origin.conf" -T
expect_status 0 "dist/mtps-origin.conf"
expect_eq "$RUN_STDOUT" "$defaults" "dist/mtps-origin.conf (everything commented out)"
pass "the sample dist/mtps-origin.conf parses and changes nothing"

# ---- a setting that only fails when the server starts ------------------------------------

run origin --bind not-an-address --port 0
[ "$RUN_STATUS" = 124 ] && fail "--bind not-an-address: mtps-origin did not exit"
expect_status 2 "--bind not-an-address"
expect_contains "$RUN_STDERR" "bad value 'not-an-address' for bind" "--bind not-an-address"
pass "--bind not-an-address exits 2 with: $RUN_STDERR"

exit 0
