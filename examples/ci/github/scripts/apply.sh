#!/usr/bin/env bash
# apply.yml, step "Apply": `weir apply` of the reviewed plan that find-plan.sh downloaded, then a
# comment on the pull request saying what happened. weir refuses a plan that no longer matches the
# state or the configuration (exit 3, "the saved plan is stale: …"); the comment then says why and
# what to do. Exits with weir's code.
# A cancelled job gets SIGTERM (or SIGINT): it is passed on to weir, which stops starting changes,
# waits for those in flight, saves the state and releases the lock.
# The backticks in the printf formats are Markdown, not command substitutions.
# shellcheck disable=SC2016
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

plan_file="$WEIR_WORK/plan.weir"
pr="$(cat "$WEIR_WORK/pr" 2>/dev/null || true)"
[[ -f "$plan_file" && "$pr" =~ ^[0-9]+$ ]] || die "no reviewed plan: the find-plan step did not run"

code=0
commands_off
weir -C "$WEIR_DIR" apply --lock-timeout "${WEIR_LOCK_TIMEOUT:-5m}" "$plan_file" >"$WEIR_WORK/apply.log" 2>&1 &
weir_pid=$!
# The log, live, in the job's log.
tail -n +1 -f --pid="$weir_pid" "$WEIR_WORK/apply.log" &
tail_pid=$!
trap 'kill -TERM "$weir_pid" 2>/dev/null || true' TERM
trap 'kill -INT "$weir_pid" 2>/dev/null || true' INT
# wait returns early when a trapped signal arrives: wait again until weir has really exited.
while :; do
  wait "$weir_pid" && code=0 || code=$?
  kill -0 "$weir_pid" 2>/dev/null || break
done
wait "$tail_pid" || true
trap - TERM INT
commands_on

marker="<!-- weir:apply deployment=${WEIR_DEPLOYMENT} -->"
comment="$WEIR_WORK/apply-comment.md"
{
  printf '%s\n' "$marker"
  case "$code" in
    0) printf '### weir apply: done\n\nApplied the plan reviewed in this pull request to `%s` ([run](%s)).\n' \
      "$WEIR_DEPLOYMENT" "$(run_url)" ;;
    3)
      printf '### weir apply: refused, the reviewed plan is stale\n\n'
      printf 'Nothing was applied to `%s` ([run](%s)). The plan reviewed here no longer matches what `%s` gives now:\n\n' \
        "$WEIR_DEPLOYMENT" "$(run_url)" "$GITHUB_SHA"
      fenced "$WEIR_WORK/apply.log" 20000
      printf '\nAnother change was applied since, or this commit is not the one that was planned. '
      printf 'Open a pull request (even an empty one): its plan shows what applying the configuration now does.\n'
      ;;
    130 | 143)
      printf '### weir apply: cancelled\n\n'
      printf 'The job was cancelled: weir finished the changes in flight, recorded them in the state and released the lock ([run](%s)). ' "$(run_url)"
      printf 'Make a new plan (any pull request) to complete the rest.\n\n'
      fenced "$WEIR_WORK/apply.log" 20000
      ;;
    *)
      printf '### weir apply: failed (exit %s)\n\n' "$code"
      printf 'What finished is recorded in the state; what failed and what depends on it was not done ([run](%s)):\n\n' "$(run_url)"
      fenced "$WEIR_WORK/apply.log" 20000
      ;;
  esac
} >"$comment"
summary "$comment"
api POST "/repos/${GITHUB_REPOSITORY}/issues/${pr}/comments" "$(json_body "$comment")" >/dev/null \
  || echo "could not comment on #${pr}" >&2
exit "$code"
