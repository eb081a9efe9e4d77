#!/usr/bin/env bash
# drift.yml, step "Look for drift": `weir plan --detailed-exitcode`. When the deployment no longer matches its
# configuration (exit 2) it opens one issue with the Markdown plan, or updates the one already open;
# when it matches again (exit 0) it closes that issue. The issue is found by weir's drift marker, its
# first line, among open issues opened by this workflow's bot. Fails on a weir error.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

marker="<!-- weir:drift deployment=${WEIR_DEPLOYMENT} -->"
code=0
commands_off
weir -C "$WEIR_DIR" plan --format markdown --drift-marker --detailed-exitcode \
  --lock-timeout "${WEIR_LOCK_TIMEOUT:-5m}" ${WEIR_PLAN_COMPACT:+--compact} \
  >"$WEIR_WORK/drift.md" || code=$?
commands_on
output exitcode "$code"
[[ "$code" == 0 || "$code" == 2 ]] || die "weir plan failed (exit ${code}): drift unknown"
if [[ "$code" == 2 ]]; then
  [[ "$(head -n 1 "$WEIR_WORK/drift.md")" == "$marker" ]] \
    || die "the plan's first line is not $marker: is WEIR_DEPLOYMENT the name in the deployment block?"
fi

open_issue="$(api_list "/repos/${GITHUB_REPOSITORY}/issues?state=open" |
  jq -r --arg marker "$marker" --arg bot "$WEIR_BOT_LOGIN" '
  [.[] | select(.pull_request == null and .user.login == $bot
                and ((.body // "") | split("\n")[0] | rtrimstr("\r")) == $marker)]
  | first | .number // empty')"

footer="$(printf '\n\n<sub>Found by the nightly drift check ([run](%s)). Closed by it when the deployment matches its configuration again.</sub>\n' "$(run_url)")"
if [[ "$code" == 2 ]]; then
  summary "$WEIR_WORK/drift.md"
  body="$(json_body "$WEIR_WORK/drift.md" "$footer")"
  if [[ -n "$open_issue" ]]; then
    api PATCH "/repos/${GITHUB_REPOSITORY}/issues/${open_issue}" "$body" >/dev/null
    echo "drift: updated issue #${open_issue}"
  else
    request="$WEIR_WORK/issue.json"
    jq --arg title "Drift: deployment ${WEIR_DEPLOYMENT} no longer matches its configuration" \
      '. + {title: $title}' "$body" >"$request"
    number="$(api POST "/repos/${GITHUB_REPOSITORY}/issues" "$request" | jq -r '.number')"
    echo "drift: opened issue #${number}"
  fi
else
  echo "no drift: ${WEIR_DEPLOYMENT} matches its configuration" | tee -a "${GITHUB_STEP_SUMMARY:-/dev/null}"
  if [[ -n "$open_issue" ]]; then
    note="$WEIR_WORK/close.json"
    jq -n --arg url "$(run_url)" '{body: ("The deployment matches its configuration again ([run](" + $url + ")): closing.")}' >"$note"
    api POST "/repos/${GITHUB_REPOSITORY}/issues/${open_issue}/comments" "$note" >/dev/null
    jq -n '{state: "closed", state_reason: "completed"}' >"$note"
    api PATCH "/repos/${GITHUB_REPOSITORY}/issues/${open_issue}" "$note" >/dev/null
    echo "drift: closed issue #${open_issue}"
  fi
fi
