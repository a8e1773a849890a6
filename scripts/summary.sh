#!/usr/bin/env bash
# The test suite's closing lines from its log: the failures by name, then
# "N passed, N failed, N skipped".
#
#   bash scripts/summary.sh LOG [SKIP_LOG]
#
# Counted from the log: cargo's "test result:" lines; a test binary killed by a signal and a
# crate that does not compile (each one failure, as they print no result line); go test's
# "--- PASS/FAIL/SKIP:"; pytest -v's "FILE::TEST PASSED|FAILED|ERROR|SKIPPED"; minitest's "N runs, N assertions, N failures, N errors, N skips";
# the installed-tree and fuzz checks ("--- PASS:", "fuzz NAME: ok|FAILED|skipped"); and
# "step failed: NAME" lines that scripts/test.sh writes for a step that exited non-zero.
# Each failure counts once: a step that failed because one of its tests failed is that test's
# failure, and counts as one of its own only when nothing inside it was counted (go vet, a
# TestMain exit, a build). scripts/test.sh marks where each step begins ("== step: NAME").
# SKIP_LOG (from the Rust tests, EXONA_SKIP_LOG) holds "skip-test NAME: why" for a test that
# ran nothing (taken out of "passed") and "skip-check NAME: why" for one check left out.
# Exits 1 when anything failed, so the line and the exit status always agree.
set -uo pipefail
log="$1"
skips="${2:-/dev/null}"
awk '
  function failed(name) { f++; in_step++; names = names (names == "" ? "" : "\n") "  " name }
  { file = (FILENAME == ARGV[1]) ? 1 : 2 }
  file == 1 && /^== step: / { in_step = 0; step = substr($0, 10) }
  file == 1 && /^ *Running [^ ]+/ {
    for (i = 1; i < NF; i++) if ($i == "Running") bin = $(i + 1)
    sub(/.*\//, "", bin); sub(/\.rs$/, "", bin); sub(/-[0-9a-f]+$/, "", bin)
  }
  file == 1 && /^test .* \.\.\. FAILED$/ { t = $2; failed(bin "::" t) }
  file == 1 && /^test result:/ {
    for (i = 1; i < NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i
      if ($(i+1) ~ /^ignored/) s += $i
    }
  }
  file == 1 && /process didn.t exit successfully/ && /signal: / {
    b = $0; sub(/.*successfully: `/, "", b); sub(/`.*/, "", b); sub(/.*\//, "", b); sub(/-[0-9a-f]+$/, "", b)
    failed(b " (killed by a signal)")
  }
  file == 1 && /^error: could not compile/ { c = $0; sub(/^error: /, "", c); sub(/ due to.*/, "", c); failed(c) }
  file == 1 && /^--- PASS:/ { p++ }
  file == 1 && /^--- FAIL:/ { n = $3; sub(/:$/, "", n); failed(n) }
  file == 1 && /^--- SKIP:/ { s++ }
  file == 1 && /^ *[0-9]+\) (Failure|Error):$/ { minitest_name = 1; next }
  file == 1 && minitest_name { n = $1; sub(/:$/, "", n); minitest_name = 0; failed(n) }
  file == 1 && / runs, .* assertions, .* failures, .* errors, .* skips/ {
    runs = $1; bad = $5 + $7; sk = $9
    p += runs - bad - sk; s += sk
    # Named above ("1) Failure:" and the next line); any it did not name still count.
    for (k = in_step; k < bad; k++) failed("a minitest test (unnamed)")
  }
  file == 1 && /^[^ ]+\.py::[^ ]+ PASSED/ { p++ }
  file == 1 && /^[^ ]+\.py::[^ ]+ (FAILED|ERROR)/ { failed($1) }
  file == 1 && /^[^ ]+\.py::[^ ]+ SKIPPED/ { s++ }
  file == 1 && /^fuzz [a-z_]+: ok/ { p++ }
  file == 1 && /^fuzz [a-z_]+: FAILED/ { failed("fuzz " substr($2, 1, length($2) - 1)) }
  file == 1 && /^fuzz: skipped/ { s++ }
  file == 1 && /^step failed: / { if (in_step == 0) failed("step " substr($0, 14)); in_step = 0 }
  file == 2 && /^skip-test / { p--; s++ }
  file == 2 && /^skip-check / { s++ }
  END {
    if (names != "") print "failed:\n" names
    printf "%d passed, %d failed, %d skipped\n", p, f, s
    exit (f > 0)
  }' "$log" "$skips"
