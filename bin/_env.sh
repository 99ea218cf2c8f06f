# Sourced by bin/* scripts. Finds Python 3.10 (Rasa) and 3.11 (app) and makes both virtualenvs,
# cached outside the checkout under $CROSSDESK_CACHE keyed by the lock file's hash, so a fresh clone
# (and CI) reuses them instead of reinstalling.
set -euo pipefail
CROSSDESK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CROSSDESK_ROOT
export CROSSDESK_CACHE="${CROSSDESK_CACHE:-$HOME/.cache/crossdesk}"
export PYTHONPATH="$CROSSDESK_ROOT${PYTHONPATH:+:$PYTHONPATH}"

find_python() {  # find_python 3.10 → path of a python3.10 interpreter
  local v="$1" cand
  for cand in "$(command -v "python$v" 2>/dev/null || true)" "$HOME"/.pyenv/versions/"$v".*/bin/"python$v" \
              /usr/local/bin/"python$v" /usr/bin/"python$v"; do
    if [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import venv' >/dev/null 2>&1; then echo "$cand"; return 0; fi
  done
  return 1
}

make_env() {  # make_env NAME PYTHON_VERSION LOCKFILE... → prints the env's python
  local name="$1" version="$2" hash dir py lock
  shift 2
  hash="$(cat "$@" | sha256sum | cut -c1-16)"
  dir="$CROSSDESK_CACHE/envs/$name-py$version-$hash"
  if [ ! -f "$dir/.complete" ]; then
    py="$(find_python "$version")" || {
      echo "crossdesk: Python $version is required for the $name environment but was not found." >&2
      echo "  Install it (e.g. 'pyenv install $version' or 'apt-get install python$version') and retry." >&2
      exit 3; }
    echo "crossdesk: creating $name environment (Python $version) in $dir ..." >&2
    rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
    "$py" -m venv "$dir"
    # A failed install must not leave an environment marked complete (the next run would trust it).
    "$dir/bin/python" -m pip install -q --upgrade "pip==24.2" >&2 || {
      echo "crossdesk: could not upgrade pip in $dir" >&2; exit 4; }
    for lock in "$@"; do
      "$dir/bin/python" -m pip install -q --no-input -r "$lock" >&2 || {
        echo "crossdesk: installing $lock into $dir failed (see above)" >&2; exit 4; }
    done
    touch "$dir/.complete"
  fi
  echo "$dir/bin/python"
}

ensure_envs() {
  # The app env carries the test-only packages too (bin/test); the image installs app.lock alone.
  CROSSDESK_APP_PYTHON="$(make_env app 3.11 "$CROSSDESK_ROOT/requirements/app.lock" "$CROSSDESK_ROOT/requirements/test.lock")"
  CROSSDESK_RASA_PYTHON="$(make_env rasa 3.10 "$CROSSDESK_ROOT/requirements/rasa.lock")"
  export CROSSDESK_APP_PYTHON CROSSDESK_RASA_PYTHON
}
