#!/usr/bin/env bash
# The test suite's closing line from its log: "N passed, N failed, N skipped".
#
#   bash scripts/summary.sh LOG [SKIP_LOG]
#
# Counted from the log: cargo's "test result:" lines; a test binary killed by a signal and a
# crate that does not compile (each one failure, as they print no result line); go test's
# "--- PASS/FAIL/SKIP:"; minitest's "N runs, N assertions, N failures, N errors, N skips";
# the installed-tree and fuzz checks ("--- PASS:", "fuzz NAME: ok|FAILED|skipped"); and
# "step failed: NAME" lines that scripts/test.sh writes for a step that exited non-zero (go
# vet, a TestMain exit, a build), so a failed step is always a failure in the count.
# SKIP_LOG (from the Rust tests, EXONA_SKIP_LOG) holds "skip-test NAME: why" for a test that
# ran nothing (taken out of "passed") and "skip-check NAME: why" for one check left out.
# Exits 1 when anything failed, so the line and the exit status always agree.
set -uo pipefail
log="$1"
skips="${2:-/dev/null}"
read -r passed failed skipped < <(awk '
  { file = (FILENAME == ARGV[1]) ? 1 : 2 }
  file == 1 && /^test result:/ {
    for (i = 1; i < NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i
      if ($(i+1) ~ /^failed/) f += $i
      if ($(i+1) ~ /^ignored/) s += $i
    }
  }
  file == 1 && /process didn.t exit successfully/ && /signal: / { f++ }
  file == 1 && /^error: could not compile/ { f++ }
  file == 1 && /^--- PASS:/ { p++ }
  file == 1 && /^--- FAIL:/ { f++ }
  file == 1 && /^--- SKIP:/ { s++ }
  file == 1 && / runs, .* assertions, .* failures, .* errors, .* skips/ {
    runs = $1; bad = $5 + $7; sk = $9
    p += runs - bad - sk; f += bad; s += sk
  }
  file == 1 && /^fuzz [a-z_]+: ok/ { p++ }
  file == 1 && /^fuzz [a-z_]+: FAILED/ { f++ }
  file == 1 && /^fuzz: skipped/ { s++ }
  file == 1 && /^step failed: / { f++ }
  file == 2 && /^skip-test / { p--; s++ }
  file == 2 && /^skip-check / { s++ }
  END { printf "%d %d %d\n", p, f, s }' "$log" "$skips")
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
