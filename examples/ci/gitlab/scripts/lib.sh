# shellcheck shell=bash
# Shared by the weir GitLab CI scripts: sourced, never run. Needs bash, curl and jq. Everything
# read from the GitLab API or a merge request is data: it goes through jq and files, never eval.
set -euo pipefail

WEIR_DIR="${WEIR_DIR:-.}"
# Inside the project directory: GitLab keeps artifacts from there only.
WEIR_WORK="${CI_PROJECT_DIR:-.}/weir-ci"
mkdir -p "$WEIR_WORK"
# Listing notes stops after this many pages of 100, so a flooded thread cannot stall a job.
MAX_PAGES=30

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

require_env() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "$name is not set (GitLab sets it, or it is a CI/CD variable: see .gitlab-ci.yml)"
  done
}

require_env WEIR_DEPLOYMENT
[[ "$WEIR_DEPLOYMENT" =~ ^[A-Za-z0-9_-]+$ ]] || die "WEIR_DEPLOYMENT must be a deployment name (letters, digits, _ and -)"

# api METHOD PATH [BODY_FILE]: one GitLab REST call below $CI_API_V4_URL/projects/$CI_PROJECT_ID;
# prints the body, fails on an HTTP error. The token goes to curl on standard input, never argv.
api() {
  require_env CI_API_V4_URL CI_PROJECT_ID WEIR_GITLAB_TOKEN
  local method="$1" path="$2" body="${3:-}"
  local args=(--silent --show-error --fail-with-body --retry 3 --max-time 300 -X "$method")
  if [[ -n "$body" ]]; then
    args+=(-H "Content-Type: application/json" --data-binary "@$body")
  fi
  curl "${args[@]}" -K - "${CI_API_V4_URL}/projects/${CI_PROJECT_ID}${path}" \
    <<<"header = \"PRIVATE-TOKEN: ${WEIR_GITLAB_TOKEN}\""
}

# api_list PATH: every item of a paginated list, as one JSON array (pages go through files).
api_list() {
  local path="$1" sep='?' page=1 pages file
  [[ "$path" == *\?* ]] && sep='&'
  pages="$(mktemp -d "$WEIR_WORK/pages.XXXXXX")"
  while ((page <= MAX_PAGES)); do
    file="$pages/$(printf '%04d' "$page").json"
    api GET "${path}${sep}per_page=100&page=${page}" >"$file"
    [[ "$(jq 'length' "$file")" -lt 100 ]] && break
    page=$((page + 1))
  done
  jq -s 'add // []' "$pages"/*.json
  rm -rf "$pages"
}

# note_on_mr IID FILE: posts FILE as a note on merge request IID.
note_on_mr() {
  local request="$WEIR_WORK/note.json"
  jq -n --rawfile body "$2" '{body: $body}' >"$request"
  api POST "/merge_requests/$1/notes" "$request" >/dev/null
}

# fenced FILE MAX_CHARS: FILE's last MAX_CHARS characters as a Markdown code block whose fence
# is longer than any run of backticks inside.
fenced() {
  jq -rn --rawfile text "$1" --argjson max "$2" '
    ($text | if length > $max then "…" + .[length - $max:] else . end) as $t
    | ([$t | scan("`+") | length] | max // 0) as $run
    | ("`" * ([$run + 1, 3] | max)) as $fence
    | $fence + "text\n" + $t + (if ($t | endswith("\n")) then "" else "\n" end) + $fence'
}

job_url() {
  printf '%s' "${CI_JOB_URL:-}"
}

# Google credentials from the job's OIDC token (id_tokens: GCP_ID_TOKEN), by workload identity
# federation: an external_account file that reads the token from a file and impersonates
# $WEIR_SERVICE_ACCOUNT. Nothing is written when the job has no token (a local target needs none).
if [[ -n "${GCP_ID_TOKEN:-}" ]]; then
  require_env GCP_WIF_PROVIDER WEIR_SERVICE_ACCOUNT
  # Outside the project directory, so no artifact can pick them up.
  google_dir="$(mktemp -d)"
  printf '%s' "$GCP_ID_TOKEN" >"$google_dir/oidc-token"
  jq -n --arg provider "$GCP_WIF_PROVIDER" --arg token "$google_dir/oidc-token" --arg sa "$WEIR_SERVICE_ACCOUNT" '
    {type: "external_account",
     audience: ("//iam.googleapis.com/" + $provider),
     subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
     token_url: "https://sts.googleapis.com/v1/token",
     credential_source: {file: $token},
     service_account_impersonation_url:
       ("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" + $sa + ":generateAccessToken")}' \
    >"$google_dir/credentials.json"
  export GOOGLE_APPLICATION_CREDENTIALS="$google_dir/credentials.json"
fi
