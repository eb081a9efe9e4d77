#!/usr/bin/env bash
# THE test command for weir (CI runs it via .ci/run).
#
# 1. installs the external test dependencies when missing (scripts/test-deps.sh: the real mage-ai 0.9.80 and
#    fake-gcs-server, and Google's API discovery documents, in venvs under ${WEIR_TEST_DEPS:-<repo>/.test-deps}; ~3 min the first time, instant after);
# 2. exports WEIR_TEST_MAGE / WEIR_TEST_FAKE_GCS / WEIR_TEST_DISCOVERY_DIR from <deps>/env.sh;
# 3. runs every test of the workspace: all targets (lib, bins, integration tests, examples, benches) + doctests,
#    with --no-fail-fast so one failing test binary does not hide the others (exit code is still non-zero).
#
# With arguments, runs `cargo test --workspace <args>` instead, e.g. `scripts/test.sh --test mage_harness`
# or `scripts/test.sh -- mage_`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

"$REPO/scripts/test-deps.sh"
# shellcheck source=/dev/null
source "${WEIR_TEST_DEPS:-$REPO/.test-deps}/env.sh"
export WEIR_TEST_MAGE WEIR_TEST_FAKE_GCS WEIR_TEST_DISCOVERY_DIR

if [[ $# -gt 0 ]]; then
  echo "+ cargo test --workspace $*" >&2
  exec cargo test --workspace "$@"
fi
rc=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "+ cargo test --workspace --all-targets --no-fail-fast" >&2
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log" || rc=$?
# `--all-targets` skips doctests; run them separately.
echo "+ cargo test --workspace --doc --no-fail-fast" >&2
cargo test --workspace --doc --no-fail-fast 2>&1 | tee -a "$log" || rc=$?
# One closing line for the whole run (each test binary prints its own `test result:` line).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "weir: %d passed, %d failed\n", p, f }' "$log"
exit "$rc"
