#!/usr/bin/env bash
# apply.yml, step "Find the reviewed plan": finds the pull request that was merged as this commit, and
# downloads the plan that plan.yml saved for that pull request's last commit (the one its comment
# shows) into $RUNNER_TEMP/weir/plan.weir. Step outputs: pr, plan-file.
# Fails when the commit did not come from a pull request, or that pull request has no saved plan:
# nothing reviewed, nothing applied.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env GITHUB_SHA

[[ "$GITHUB_SHA" =~ ^[0-9a-f]{40}$ ]] || die "GITHUB_SHA is not a commit id"
rm -f "$WEIR_WORK/plan.weir" "$WEIR_WORK/pr"

pull="$(api GET "/repos/${GITHUB_REPOSITORY}/commits/${GITHUB_SHA}/pulls" | jq -c --arg sha "$GITHUB_SHA" '
  [.[] | select(.merged_at != null and .merge_commit_sha == $sha)] | first // empty')"
[[ -n "$pull" ]] || die "commit ${GITHUB_SHA} was not merged from a pull request, so no plan of it was reviewed: \
change the configuration through a pull request"
pr="$(jq -r '.number' <<<"$pull")"
head_sha="$(jq -r '.head.sha' <<<"$pull")"
[[ "$pr" =~ ^[0-9]+$ && "$head_sha" =~ ^[0-9a-f]{40}$ ]] || die "unexpected pull request data from the API"
printf '%s\n' "$pr" >"$WEIR_WORK/pr"
output pr "$pr"

name="weir-plan-${WEIR_DEPLOYMENT}-${head_sha}"
artifact="$(api GET "/repos/${GITHUB_REPOSITORY}/actions/artifacts?name=${name}&per_page=100" | jq -c \
  --arg name "$name" --arg sha "$head_sha" '
  [.artifacts[] | select(.name == $name and .expired == false and .workflow_run.head_sha == $sha)]
  | sort_by(.created_at) | last // empty')"
[[ -n "$artifact" ]] || die "pull request #${pr} has no saved plan for its last commit ${head_sha} (artifact ${name}): \
did its plan job finish?"

# The archive URL redirects to storage on another host; curl sends the token to the API host only.
url="$(jq -r '.archive_download_url' <<<"$artifact")"
[[ "$url" == "${GITHUB_API_URL}/"* ]] || die "the artifact's download address is not on ${GITHUB_API_URL}"
zip="$WEIR_WORK/plan.zip"
curl --silent --show-error --fail --location --retry 3 --max-time 300 -o "$zip" -K - "$url" \
  <<<"header = \"Authorization: Bearer ${GITHUB_TOKEN}\""
# Only the one member, to a path chosen here: names inside the archive are never used as paths.
unzip -p "$zip" plan.weir >"$WEIR_WORK/plan.weir" || die "the artifact ${name} holds no plan.weir"
[[ -s "$WEIR_WORK/plan.weir" ]] || die "the artifact ${name} holds an empty plan.weir"
output plan-file "$WEIR_WORK/plan.weir"
echo "reviewed plan: pull request #${pr}, commit ${head_sha}"
