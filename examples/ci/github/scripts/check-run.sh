#!/usr/bin/env bash
# plan.yml, step "Report the plan as a check": a check on the pull request's head commit that says what the plan
# found: success when there are changes to review, neutral when there is nothing to do, failure
# on an error. (A job itself can only pass or fail.)
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env GITHUB_EVENT_PATH

head_sha="$(jq -r '.pull_request.head.sha // empty' "$GITHUB_EVENT_PATH")"
[[ "$head_sha" =~ ^[0-9a-f]{40}$ ]] || die "the event has no pull request head commit"
code="$(cat "$WEIR_WORK/exitcode" 2>/dev/null || echo 1)"

case "$code" in
  0) conclusion=neutral title="No changes" ;;
  2) conclusion=success title="$(grep -m 1 -o '^\*\*Plan: [^*]*\*\*' "$WEIR_WORK/plan.md" | tr -d '*' || true)" ;;
  *) conclusion=failure title="weir plan failed" ;;
esac
[[ -n "$title" ]] || title="Changes to review"

request="$WEIR_WORK/check-run.json"
jq -n --arg name "weir plan (${WEIR_DEPLOYMENT})" --arg sha "$head_sha" --arg conclusion "$conclusion" \
  --arg title "$title" --arg url "$(run_url)" '
  {name: $name, head_sha: $sha, status: "completed", conclusion: $conclusion, details_url: $url,
   output: {title: $title, summary: "The plan is in the pull request comment and in the run summary."}}' >"$request"
api POST "/repos/${GITHUB_REPOSITORY}/check-runs" "$request" >/dev/null
echo "check run: ${conclusion} (${title})"
