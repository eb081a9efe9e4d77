#!/usr/bin/env bash
# plan.yml, step "Comment the plan": posts the plan as the pull request's comment for this deployment, or edits
# that comment when it exists, so a pull request has one plan comment per deployment however often
# it is pushed. The comment is found by its first line, weir's marker, among the comments written by
# this workflow's bot (a marker pasted by someone else is never edited).
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env GITHUB_EVENT_PATH

pr="$(jq -r '.pull_request.number // empty' "$GITHUB_EVENT_PATH")"
[[ "$pr" =~ ^[0-9]+$ ]] || die "the event has no pull request number: run this on pull_request events"
head_sha="$(jq -r '.pull_request.head.sha // empty' "$GITHUB_EVENT_PATH")"
[[ "$head_sha" =~ ^[0-9a-f]{40}$ ]] || die "the event has no pull request head commit"

comment="$WEIR_WORK/comment.md"
[[ -f "$comment" ]] || die "$comment is missing: the plan step did not run"
marker="$(head -n 1 "$comment")"

footer="$(printf '\n\n<sub>Plan of %s, [run](%s). Merging applies exactly this plan.</sub>\n' "$head_sha" "$(run_url)")"
body="$(json_body "$comment" "$footer")"

existing="$(api_list "/repos/${GITHUB_REPOSITORY}/issues/${pr}/comments" | jq -r \
  --arg marker "$marker" --arg bot "$WEIR_BOT_LOGIN" '
  [.[] | select(.user.login == $bot and ((.body // "") | split("\n")[0] | rtrimstr("\r")) == $marker)]
  | first | .id // empty')"

if [[ -n "$existing" ]]; then
  api PATCH "/repos/${GITHUB_REPOSITORY}/issues/comments/${existing}" "$body" >/dev/null
  echo "updated the plan comment ${existing} on #${pr}"
else
  api POST "/repos/${GITHUB_REPOSITORY}/issues/${pr}/comments" "$body" >/dev/null
  echo "posted the plan comment on #${pr}"
fi
