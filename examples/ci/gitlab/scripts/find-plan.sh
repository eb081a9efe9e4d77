#!/usr/bin/env bash
# .gitlab-ci.yml, job weir-apply: finds the merge request merged as this commit and downloads the
# plan that its last pipeline's weir-plan job saved (the one its note shows) to weir-ci/plan.weir.
# Fails when the commit was not merged from a merge request, or that merge request has no saved
# plan: nothing reviewed, nothing applied.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env CI_COMMIT_SHA

sha="$CI_COMMIT_SHA"
[[ "$sha" =~ ^[0-9a-f]{40}$ ]] || die "CI_COMMIT_SHA is not a commit id"
rm -f "$WEIR_WORK/plan.weir" "$WEIR_WORK/mr"

mr="$(api GET "/repository/commits/${sha}/merge_requests" | jq -c --arg sha "$sha" '
  [.[] | select(.state == "merged" and (.merge_commit_sha == $sha or .squash_commit_sha == $sha))]
  | first // empty')"
[[ -n "$mr" ]] || die "commit ${sha} was not merged from a merge request, so no plan of it was reviewed: \
change the configuration through a merge request"
iid="$(jq -r '.iid' <<<"$mr")"
head_sha="$(jq -r '.sha' <<<"$mr")"
[[ "$iid" =~ ^[0-9]+$ && "$head_sha" =~ ^[0-9a-f]{40}$ ]] || die "unexpected merge request data from the API"
printf '%s\n' "$iid" >"$WEIR_WORK/mr"

pipeline="$(api GET "/merge_requests/${iid}/pipelines" | jq -r --arg sha "$head_sha" '
  [.[] | select(.sha == $sha)] | sort_by(.id) | last | .id // empty')"
[[ "$pipeline" =~ ^[0-9]+$ ]] || die "merge request !${iid} has no pipeline for its last commit ${head_sha}"
job="$(api GET "/pipelines/${pipeline}/jobs?per_page=100" | jq -r '
  [.[] | select(.name == "weir-plan" and .status == "success")] | last | .id // empty')"
[[ "$job" =~ ^[0-9]+$ ]] || die "pipeline ${pipeline} of merge request !${iid} has no successful weir-plan job: \
no reviewed plan"
api GET "/jobs/${job}/artifacts/weir-ci/plan.weir" >"$WEIR_WORK/plan.weir" \
  || die "job ${job} kept no weir-ci/plan.weir"
[[ -s "$WEIR_WORK/plan.weir" ]] || die "job ${job} kept an empty weir-ci/plan.weir"
echo "reviewed plan: merge request !${iid}, commit ${head_sha}"
