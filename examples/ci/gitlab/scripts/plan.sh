#!/usr/bin/env bash
# .gitlab-ci.yml, job weir-plan: `weir fmt --check`, `weir validate` (its problems as a Code Quality
# report, shown in the merge request) and `weir plan`, which writes the saved plan (weir-ci/plan.weir,
# kept as the job's artifact for weir-apply) and the Markdown note in one run.
# Leaves in weir-ci/: plan.weir, note.md (the note to post, also on an error), code-quality.json and
# exitcode (0: nothing to do, 2: changes, 1: error). Exits 0: mr-note.sh posts the note, then fails
# the job when the plan failed.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

marker="<!-- weir:plan deployment=${WEIR_DEPLOYMENT} -->"
rm -f "$WEIR_WORK/plan.weir" "$WEIR_WORK/note.md"

weir -C "$WEIR_DIR" fmt --check || echo "some .hcl files are not formatted: run \`weir fmt\` and commit the result" >&2
weir -C "$WEIR_DIR" validate --format json >"$WEIR_WORK/validate.json" || true
jq '[.[]? | {description: (.message + (if .help then " (" + .help + ")" else "" end)),
             check_name: "weir validate",
             fingerprint: ([.file, .line, .column, .message] | tostring | @base64),
             severity: (if .severity == "error" then "blocker" else "minor" end),
             location: {path: .file, lines: {begin: .line}}}]' \
  "$WEIR_WORK/validate.json" >"$WEIR_WORK/code-quality.json" 2>/dev/null || echo '[]' >"$WEIR_WORK/code-quality.json"

code=0
weir -C "$WEIR_DIR" plan --out "$WEIR_WORK/plan.weir" --format markdown --detailed-exitcode \
  --lock-timeout "${WEIR_LOCK_TIMEOUT:-5m}" ${WEIR_PLAN_COMPACT:+--compact} \
  >"$WEIR_WORK/plan.md" 2>"$WEIR_WORK/plan.log" || code=$?
cat "$WEIR_WORK/plan.log" >&2

if [[ ("$code" == 0 || "$code" == 2) && "$(head -n 1 "$WEIR_WORK/plan.md")" == "$marker" ]]; then
  cp "$WEIR_WORK/plan.md" "$WEIR_WORK/note.md"
else
  [[ "$code" == 0 || "$code" == 2 ]] && echo "error: the plan's first line is not $marker: is WEIR_DEPLOYMENT the name in the deployment block?" >>"$WEIR_WORK/plan.log"
  code=1
  rm -f "$WEIR_WORK/plan.weir"
  {
    printf '%s\n### weir plan failed\n\n' "$marker"
    printf 'weir could not make a plan of this commit ([job](%s)):\n\n' "$(job_url)"
    fenced "$WEIR_WORK/plan.log" 60000
  } >"$WEIR_WORK/note.md"
fi
printf '%s\n' "$code" >"$WEIR_WORK/exitcode"
