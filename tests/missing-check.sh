#!/bin/sh
# missing-check.sh - what `make check` runs instead of the unit and integration tests when
# configure did not find Check: a failure that says how to get them.
echo "Check (the C unit test framework) was not found when configure ran: apt-get install check, then re-run ./configure"
exit 1
