#!/usr/bin/env bash
# Benchmarks weir on generated `target = "local"` configurations and prints a markdown table.
#
#   scripts/bench.sh                 # builds in release, then N = 20, 200, 1000 pipelines
#   SIZES="20 200" scripts/bench.sh  # other sizes (pipelines; each lowers to 5 resources, +1 project)
#
# Each pipeline has three blocks (load -> transform -> export, real Python files with Mage's
# decorators) and one time schedule; scripts/bench_gen.py writes the configuration into a temp
# dir. Steps, each under /usr/bin/time -v (wall, user+sys CPU, max RSS):
#   validate; plan from empty (no state, --detailed-exitcode must be 2); apply --auto-approve;
#   no-change plan (--detailed-exitcode must be 0); no-change plan --refresh=false (must be 0).
# Then `weir validate -C examples/quickstart`, many runs (hyperfine if installed, else a loop),
# and the state journal benchmark (benches/state_journal.rs: 5,000 fsynced records, replay,
# persist; skipped with WEIR_BIN, which means no cargo).
#
# Numbers only, no thresholds: the script fails (non-zero) only when a step fails or a plan
# reports the wrong thing.
#
# Environment:
#   SIZES            pipeline counts (default "20 200 1000" = 101, 1001, 5001 resources)
#   WEIR_BIN         use this binary and skip the build
#   CARGO_TARGET_DIR the usual cargo override, if the shared target dir is locked
#   QUICK_RUNS       runs of the quickstart validate (default 50)
#   KEEP_TMP=1       keep the generated configurations (the path is printed)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${SIZES:-20 200 1000}"
QUICK_RUNS="${QUICK_RUNS:-50}"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

[ -x /usr/bin/time ] || die "/usr/bin/time is required (apt-get install time)"
command -v python3 >/dev/null || die "python3 is required (it generates the configurations)"

# --- build -------------------------------------------------------------------------------------
if [ -n "${WEIR_BIN:-}" ]; then
    BIN="$WEIR_BIN"
else
    log "cargo build --release (several minutes from scratch on 2 cores)"
    (cd "$REPO" && cargo build --release --bin weir) >&2 || die "cargo build --release failed"
    TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
    BIN="$TARGET_DIR/release/weir"
fi
[ -x "$BIN" ] || die "no weir binary at $BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
log "binary: $BIN ($("$BIN" --version))"

# --- temp dir and cleanup ----------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-bench.XXXXXX")"
cleanup() {
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ROWS="$WORK/rows.tsv"
: >"$ROWS"

# measure LABEL RESOURCES EXPECTED_RC DIR -- CMD...
# Runs CMD under /usr/bin/time -v, checks its exit code, appends a row to $ROWS.
measure() {
    local label="$1" resources="$2" expected="$3" dir="$4"
    shift 5
    local out="$dir.out" err="$dir.err" tv="$dir.time"
    local rc=0
    /usr/bin/time -v -o "$tv" "$@" >"$out" 2>"$err" || rc=$?
    if [ "$rc" != "$expected" ]; then
        log "step '$label' ($resources resources) exited $rc, expected $expected: $*"
        log "--- stderr (last 30 lines) ---"; tail -n 30 "$err" >&2 || true
        log "--- stdout (last 30 lines) ---"; tail -n 30 "$out" >&2 || true
        exit 1
    fi
    local bytes
    bytes=$(wc -c <"$out")
    awk -F': ' -v label="$label" -v res="$resources" -v bytes="$bytes" \
        -v load="$(cut -d' ' -f1 /proc/loadavg)" '
        /User time \(seconds\)/   { user = $2 }
        /System time \(seconds\)/ { sys = $2 }
        /Maximum resident set size/ { rss = $2 }
        /Elapsed \(wall clock\)/ {
            n = split($NF, t, ":"); wall = 0
            for (i = 1; i <= n; i++) wall = wall * 60 + t[i]
        }
        END {
            printf "%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%s\n",
                res, label, wall, user + sys, user, sys, rss / 1024, bytes, load
        }' "$tv" >>"$ROWS"
    log "$(tail -n 1 "$ROWS" | awk -F'\t' '{ printf "%5s resources  %-28s wall %6ss  cpu %6ss  rss %6s MB  (load %s)", $1, $2, $3, $4, $7, $9 }')"
}

# The "N to add" of a plan's summary line, or empty when the output has none.
planned_adds() { { grep -ohE '[0-9]+ to add' "$@" 2>/dev/null || true; } | head -n 1 | cut -d' ' -f1; }

for n in $SIZES; do
    resources=$((5 * n + 1))
    dir="$WORK/n$n"
    log "generating $n pipelines ($resources resources) in $dir"
    python3 "$REPO/scripts/bench_gen.py" "$dir" "$n" || die "bench_gen.py failed"

    measure "validate" "$resources" 0 "$WORK/validate-$n" -- "$BIN" --no-color validate -C "$dir"
    measure "plan (empty state)" "$resources" 2 "$WORK/plan-$n" -- \
        "$BIN" --no-color plan -C "$dir" --detailed-exitcode
    adds="$(planned_adds "$WORK/plan-$n.out" "$WORK/plan-$n.err")"
    if [ -z "$adds" ]; then
        log "warning: no 'N to add' summary in the plan output; resource count not checked"
    elif [ "$adds" != "$resources" ]; then
        die "plan of $n pipelines adds $adds resources, expected $resources"
    fi
    [ ! -e "$dir/.weir/state.json" ] || die "plan wrote state into $dir/.weir/state.json"
    measure "apply --auto-approve" "$resources" 0 "$WORK/apply-$n" -- \
        "$BIN" --no-color apply -C "$dir" --auto-approve
    measure "plan (no change)" "$resources" 0 "$WORK/noop-$n" -- \
        "$BIN" --no-color plan -C "$dir" --detailed-exitcode
    measure "plan --refresh=false (no change)" "$resources" 0 "$WORK/norefresh-$n" -- \
        "$BIN" --no-color plan -C "$dir" --detailed-exitcode --refresh=false
    rm -rf "$dir"
done

# --- quickstart validate, many runs ------------------------------------------------------------
QS="$REPO/examples/quickstart"
"$BIN" --no-color validate -C "$QS" >/dev/null 2>&1 || die "weir validate -C examples/quickstart fails"
if command -v hyperfine >/dev/null; then
    log "hyperfine: weir validate -C examples/quickstart ($QUICK_RUNS runs)"
    hyperfine --shell=none --warmup 3 --runs "$QUICK_RUNS" --export-json "$WORK/qs.json" \
        "$BIN --no-color validate -C $QS" >&2 || die "hyperfine failed"
    QS_LINE="$(python3 - "$WORK/qs.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{r['mean']*1000:.1f} ms ± {r['stddev']*1000:.1f} ms (min {r['min']*1000:.1f}, max {r['max']*1000:.1f}; "
      f"user {r['user']*1000:.1f} ms, sys {r['system']*1000:.1f} ms; {len(r['times'])} runs, hyperfine)")
EOF
)"
else
    log "loop: weir validate -C examples/quickstart ($QUICK_RUNS runs; install hyperfine for stddev)"
    start=$(date +%s%N)
    for _ in $(seq "$QUICK_RUNS"); do "$BIN" --no-color validate -C "$QS" >/dev/null 2>&1; done
    end=$(date +%s%N)
    QS_LINE="$(awk -v ns=$((end - start)) -v n="$QUICK_RUNS" 'BEGIN { printf "%.1f ms mean wall (%d runs, shell loop)", ns / n / 1e6, n }')"
fi

# --- state journal ----------------------------------------------------------------------------
JOURNAL_LINES=""
if [ -z "${WEIR_BIN:-}" ]; then
    log "cargo bench --bench state_journal (5,000 fsynced journal records)"
    JOURNAL_LINES="$(cd "$REPO" && cargo bench -q --bench state_journal 2>/dev/null)" \
        || die "cargo bench --bench state_journal failed"
fi

# --- report ------------------------------------------------------------------------------------
echo
COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    COMMIT="$COMMIT + uncommitted changes"
fi
echo "weir $("$BIN" --version | awk '{print $2}') ($COMMIT), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| resources | step | wall s | CPU s (user+sys) | user s | sys s | max RSS MB | stdout KB | load (1 min) |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %.0f | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 / 1024, $9 }' "$ROWS"
echo
echo "\`weir validate -C examples/quickstart\`: $QS_LINE"
if [ -n "$JOURNAL_LINES" ]; then
    echo
    echo '```'
    echo "$JOURNAL_LINES"
    echo '```'
fi
