#!/usr/bin/env bash
# Runs the key-rotation race test of test/keys.test.ts many times on PostgreSQL and counts the
# failures (issue 8, item 5). Not part of CI: a manual check that the race stays fixed.
#
#   scripts/loop-keys-test.sh [RUNS] [PATTERN]
#
# RUNS defaults to 50 (at most 500). PATTERN (a --test-name-pattern) defaults to the test named
# in the issue. PostgreSQL comes from PORTCULLIS_TEST_DATABASE_URL, else the local default.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
pattern=${2:-concurrent rotations leave exactly one active key}
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1 || runs > 500)); then
  echo "RUNS must be 1-500" >&2
  exit 2
fi
export PORTCULLIS_TEST_DATABASE_URL=${PORTCULLIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export PORTCULLIS_TEST_REQUIRE_POSTGRES=1
pass=0
fail=0
log=$(mktemp -t loop-keys-test.XXXXXX)
for ((i = 1; i <= runs; i++)); do
  # The SQLite variant of the test runs too (cheap); the PostgreSQL one must have run and passed.
  if timeout 120 node_modules/.bin/tsx --test --test-timeout=60000 --test-name-pattern="$pattern" \
      test/keys.test.ts >"$log.run" 2>&1 && grep -q "^ok [0-9]* - on postgres" "$log.run"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "run $i failed:" >>"$log"
    grep -E "not ok|Error|expected|actual" "$log.run" | head -20 >>"$log" || true
  fi
  printf '\rrun %d/%d: %d passed, %d failed' "$i" "$runs" "$pass" "$fail"
done
echo
rm -f "$log.run"
if ((fail > 0)); then
  echo "failures (details in $log):"
  head -60 "$log"
  exit 1
fi
rm -f "$log"
echo "all $runs runs passed"
