#!/usr/bin/env bash
# plan.yml, step "Check formatting and validate": `weir fmt --check` and `weir validate`, each problem an annotation on the
# pull request's files (`validate --format github` prints GitHub's `::error file=…` commands).
# Fails when either finds a problem; both always run.
set -euo pipefail
WEIR_DIR="${WEIR_DIR:-.}"

status=0
weir -C "$WEIR_DIR" fmt --check || {
  echo "::error title=weir fmt::some .hcl files are not formatted: run \`weir fmt\` and commit the result"
  status=1
}
weir -C "$WEIR_DIR" validate --format github || status=1
exit "$status"
