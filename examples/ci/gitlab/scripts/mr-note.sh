#!/usr/bin/env bash
# .gitlab-ci.yml, job weir-plan, after plan.sh: posts the plan as the merge request's note for this
# deployment, or edits that note when it exists, so a merge request has one plan note per
# deployment however often it is pushed. The note is found by its first line, weir's marker, among
# the notes written by WEIR_GITLAB_TOKEN's user (a marker pasted by someone else is never edited).
# Then fails the job when the plan failed.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env CI_MERGE_REQUEST_IID CI_COMMIT_SHA CI_API_V4_URL WEIR_GITLAB_TOKEN

iid="$CI_MERGE_REQUEST_IID"
[[ "$iid" =~ ^[0-9]+$ ]] || die "CI_MERGE_REQUEST_IID is not a number"
note="$WEIR_WORK/note.md"
[[ -f "$note" ]] || die "$note is missing: plan.sh did not run"
marker="$(head -n 1 "$note")"
printf '\n\n<sub>Plan of %s, [job](%s). Merging applies exactly this plan.</sub>\n' "$CI_COMMIT_SHA" "$(job_url)" >>"$note"

me="$(curl --silent --show-error --fail-with-body --retry 3 -K - "${CI_API_V4_URL}/user" \
  <<<"header = \"PRIVATE-TOKEN: ${WEIR_GITLAB_TOKEN}\"" | jq -r '.id')"
existing="$(api_list "/merge_requests/${iid}/notes" | jq -r --arg marker "$marker" --argjson me "$me" '
  [.[] | select(.author.id == $me and ((.body // "") | split("\n")[0] | rtrimstr("\r")) == $marker)]
  | first | .id // empty')"

request="$WEIR_WORK/note.json"
jq -n --rawfile body "$note" '{body: $body}' >"$request"
if [[ -n "$existing" ]]; then
  api PUT "/merge_requests/${iid}/notes/${existing}" "$request" >/dev/null
  echo "updated the plan note ${existing} on !${iid}"
else
  api POST "/merge_requests/${iid}/notes" "$request" >/dev/null
  echo "posted the plan note on !${iid}"
fi
[[ "$(cat "$WEIR_WORK/exitcode")" != 1 ]] || die "weir plan failed: see the note on !${iid}"
