# shellcheck shell=bash
# Shared by the weir workflow scripts: sourced, never run. Needs bash, curl and jq (all on GitHub's
# hosted runners). Everything read from the GitHub API or from a pull request is data: it goes
# through jq and files, never through eval or an unquoted expansion.
set -euo pipefail

# The configuration directory, and where the steps of one job leave files for each other.
WEIR_DIR="${WEIR_DIR:-.}"
WEIR_WORK="${RUNNER_TEMP:-/tmp}/weir"
mkdir -p "$WEIR_WORK"

# GitHub caps a comment, an issue body and a check run summary at 65,536 characters.
GITHUB_TEXT_LIMIT=65536
# The login the comments and issues these scripts write appear under (GITHUB_TOKEN's bot).
WEIR_BOT_LOGIN="${WEIR_BOT_LOGIN:-github-actions[bot]}"
# Listing comments or issues stops after this many pages of 100, so a flooded thread cannot stall a job.
MAX_PAGES=30

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

require_env() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "$name is not set (GitHub sets it in every job; set it by hand to run this script elsewhere)"
  done
}

require_env GITHUB_OUTPUT

# The deployment's name, as in its `deployment "<name>"` block: it names the comment, the issue and
# the artifact, so one repository can hold several deployments.
require_env WEIR_DEPLOYMENT
[[ "$WEIR_DEPLOYMENT" =~ ^[A-Za-z0-9_-]+$ ]] || die "WEIR_DEPLOYMENT must be a deployment name (letters, digits, _ and -)"

# api METHOD PATH [BODY_FILE]: one GitHub REST call; prints the response body, fails on an HTTP error.
# The token goes to curl on standard input (-K -), so it never shows in a process listing.
api() {
  require_env GITHUB_API_URL GITHUB_REPOSITORY GITHUB_TOKEN
  local method="$1" path="$2" body="${3:-}"
  local args=(--silent --show-error --fail-with-body --retry 3 --max-time 60 -X "$method"
    -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28")
  if [[ -n "$body" ]]; then
    args+=(-H "Content-Type: application/json" --data-binary "@$body")
  fi
  curl "${args[@]}" -K - "${GITHUB_API_URL}${path}" <<<"header = \"Authorization: Bearer ${GITHUB_TOKEN}\""
}

# api_list PATH: every item of a paginated list (PATH without page parameters), as one JSON array.
# Pages go through files: a page of long comments is larger than one command-line argument may be.
api_list() {
  local path="$1" sep='?' page=1 pages
  [[ "$path" == *\?* ]] && sep='&'
  pages="$(mktemp -d "$WEIR_WORK/pages.XXXXXX")"
  while ((page <= MAX_PAGES)); do
    api GET "${path}${sep}per_page=100&page=${page}" >"$pages/$(printf '%04d' "$page").json"
    [[ "$(jq 'length' "$pages/$(printf '%04d' "$page").json")" -lt 100 ]] && break
    page=$((page + 1))
  done
  jq -s 'add // []' "$pages"/*.json
  rm -rf "$pages"
}

# output NAME VALUE: a step output (NAME=VALUE in $GITHUB_OUTPUT); VALUE must be one line.
output() {
  [[ "$2" != *$'\n'* ]] || die "step output $1 has more than one line"
  printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
}

# summary FILE: appends FILE to the job's summary page, when there is one.
summary() {
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat "$1" >>"$GITHUB_STEP_SUMMARY"
  fi
}

# commands_off / commands_on: around output that comes from the configuration (names, code, errors
# quoting it), GitHub's workflow commands (`::…::` lines) are switched off, so none of it can act as
# a command to the runner.
commands_off() {
  COMMANDS_TOKEN="weir-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '::stop-commands::%s\n' "$COMMANDS_TOKEN"
}
commands_on() {
  printf '::%s::\n' "$COMMANDS_TOKEN"
}

# json_body FILE [FOOTER]: the request body {"body": FILE's text}, plus FOOTER when the whole still fits
# GitHub's limit. Prints the path of the body file.
json_body() {
  local out="$WEIR_WORK/request.json"
  jq -n --rawfile text "$1" --arg footer "${2:-}" --argjson limit "$GITHUB_TEXT_LIMIT" '
    {body: (if ($text + $footer | length) <= $limit then $text + $footer
            else $text[0:$limit] end)}' >"$out"
  printf '%s\n' "$out"
}

# fenced FILE MAX_CHARS: FILE's last MAX_CHARS characters as a Markdown code block, with a fence longer
# than any run of backticks inside, so the text cannot close it.
fenced() {
  jq -rn --rawfile text "$1" --argjson max "$2" '
    ($text | if length > $max then "…" + .[length - $max:] else . end) as $t
    | ([$t | scan("`+") | length] | max // 0) as $run
    | ("`" * ([$run + 1, 3] | max)) as $fence
    | $fence + "text\n" + $t + (if ($t | endswith("\n")) then "" else "\n" end) + $fence'
}

# The link to this run, for comments.
run_url() {
  printf '%s/%s/actions/runs/%s' "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY" "${GITHUB_RUN_ID:-0}"
}
