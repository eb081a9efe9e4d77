#!/usr/bin/env bash
# .gitlab-ci.yml, job weir-apply, after find-plan.sh: `weir apply` of the reviewed plan, then a note
# on the merge request saying what happened. weir refuses a plan that no longer matches the state or
# the configuration (exit 3, "the saved plan is stale: …"); the note then says why and what to do.
# Exits with weir's code. SIGTERM and SIGINT are passed on to weir, which then finishes the changes
# in flight, saves the state and releases the lock.
# The backticks in the printf formats are Markdown, not command substitutions.
# shellcheck disable=SC2016
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

plan_file="$WEIR_WORK/plan.weir"
iid="$(cat "$WEIR_WORK/mr" 2>/dev/null || true)"
[[ -f "$plan_file" && "$iid" =~ ^[0-9]+$ ]] || die "no reviewed plan: find-plan.sh did not run"

code=0
weir -C "$WEIR_DIR" apply --lock-timeout "${WEIR_LOCK_TIMEOUT:-5m}" "$plan_file" >"$WEIR_WORK/apply.log" 2>&1 &
weir_pid=$!
tail -n +1 -f --pid="$weir_pid" "$WEIR_WORK/apply.log" &
tail_pid=$!
trap 'kill -TERM "$weir_pid" 2>/dev/null || true' TERM
trap 'kill -INT "$weir_pid" 2>/dev/null || true' INT
while :; do
  wait "$weir_pid" && code=0 || code=$?
  kill -0 "$weir_pid" 2>/dev/null || break
done
wait "$tail_pid" || true
trap - TERM INT

note="$WEIR_WORK/apply-note.md"
{
  printf '<!-- weir:apply deployment=%s -->\n' "$WEIR_DEPLOYMENT"
  case "$code" in
    0) printf '### weir apply: done\n\nApplied the plan reviewed in this merge request to `%s` ([job](%s)).\n' \
      "$WEIR_DEPLOYMENT" "$(job_url)" ;;
    3)
      printf '### weir apply: refused, the reviewed plan is stale\n\n'
      printf 'Nothing was applied to `%s` ([job](%s)). The plan reviewed here no longer matches what `%s` gives now:\n\n' \
        "$WEIR_DEPLOYMENT" "$(job_url)" "$CI_COMMIT_SHA"
      fenced "$WEIR_WORK/apply.log" 20000
      printf '\nAnother change was applied since, or this commit is not the one that was planned. '
      printf 'Open a merge request (even an empty one): its plan shows what applying the configuration now does.\n'
      ;;
    130 | 143)
      printf '### weir apply: cancelled\n\nThe job was cancelled: weir finished the changes in flight, recorded them in the state and released the lock ([job](%s)). ' "$(job_url)"
      printf 'Make a new plan (any merge request) to complete the rest.\n\n'
      fenced "$WEIR_WORK/apply.log" 20000
      ;;
    *)
      printf '### weir apply: failed (exit %s)\n\n' "$code"
      printf 'What finished is recorded in the state; what failed and what depends on it was not done ([job](%s)):\n\n' "$(job_url)"
      fenced "$WEIR_WORK/apply.log" 20000
      ;;
  esac
} >"$note"
note_on_mr "$iid" "$note" || echo "could not post a note on !${iid}" >&2
exit "$code"
