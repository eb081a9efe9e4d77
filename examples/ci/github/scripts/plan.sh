#!/usr/bin/env bash
# plan.yml, step "Plan": makes the saved plan (plan.weir, uploaded as an artifact for apply.yml) and
# the Markdown comment in one run of `weir plan`.
# Leaves in $RUNNER_TEMP/weir: plan.weir, comment.md (the comment to post, also on an error) and
# exitcode (0: nothing to do, 2: changes, 1: error). Step outputs: exitcode, plan-file.
# Exits 1 when weir failed, so the job fails; the comment step still runs.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

marker="<!-- weir:plan deployment=${WEIR_DEPLOYMENT} -->"
plan_file="$WEIR_WORK/plan.weir"
rm -f "$plan_file" "$WEIR_WORK/comment.md"

code=0
commands_off
weir -C "$WEIR_DIR" plan --out "$plan_file" --format markdown --detailed-exitcode \
  --lock-timeout "${WEIR_LOCK_TIMEOUT:-5m}" ${WEIR_PLAN_COMPACT:+--compact} \
  >"$WEIR_WORK/plan.md" 2>"$WEIR_WORK/plan.log" || code=$?
cat "$WEIR_WORK/plan.log" >&2
commands_on

case "$code" in
  0 | 2)
    [[ "$(head -n 1 "$WEIR_WORK/plan.md")" == "$marker" ]] \
      || die "the plan's first line is not $marker: is WEIR_DEPLOYMENT the name in the deployment block?"
    cp "$WEIR_WORK/plan.md" "$WEIR_WORK/comment.md"
    ;;
  *)
    code=1
    {
      printf '%s\n### weir plan failed\n\n' "$marker"
      printf 'weir could not make a plan of this commit ([run log](%s)):\n\n' "$(run_url)"
      fenced "$WEIR_WORK/plan.log" 60000
    } >"$WEIR_WORK/comment.md"
    ;;
esac

printf '%s\n' "$code" >"$WEIR_WORK/exitcode"
summary "$WEIR_WORK/comment.md"
output exitcode "$code"
output plan-file "$plan_file"
[[ "$code" != 1 ]]
