# Shared by the .ci scripts: where things live. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One target directory outside the clone, so repeated runs on a machine (and CI's fresh clones)
# reuse compiled crates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flotilla/target}"
export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"
# CI builds each commit once: incremental state would only pile up in the shared target dir.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
SITE_ROOT="$CARGO_TARGET_DIR/site"
# The tests use a debug server (faster to build); `.ci/dev` serves a release one.
SERVER_PROFILE="${FLOTILLA_SERVER_PROFILE:-debug}"
FLOTILLA_BIN="$CARGO_TARGET_DIR/$SERVER_PROFILE/flotilla"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# Schemathesis, in a virtualenv of its own (pinned in .ci/schemathesis.txt).
ST_VENV="$HOME/.cache/flotilla/schemathesis"
ST_BIN="$ST_VENV/bin/st"
# llama.cpp's OpenAI-compatible server with SmolLM2-135M (both from PyPI): the real model the
# provider tests run against.
LLAMA_VENV="$HOME/.cache/flotilla/llama"
export FLOTILLA_LLAMA_PYTHON="$LLAMA_VENV/bin/python"
