#!/usr/bin/env bash
# Makes the peers environments: Python virtualenvs holding the real frameworks modelbridge is
# cross-checked against.
#   .peers/venv       python/requirements-peers.txt (torch, tensorflow-cpu, onnx, ...)
#   .peers/tfjs-venv  python/requirements-tfjs-converter.txt (tensorflowjs_converter, which pins
#                     an older tensorflow and so cannot share the first venv)
# Idempotent: a stamp in each venv records the requirements it was built from, so a second run
# costs nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

# make_venv VENV REQUIREMENTS [NO-DEPS REQUIREMENTS]
make_venv() {
  local venv="$1" req="$2" nodeps="${3:-}"
  local stamp="$venv/.modelbridge-stamp"
  local want
  want="$(cat "$req" ${nodeps:+"$nodeps"} | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "peers environment up to date: $venv"
    return 0
  fi
  "$python" -m venv "$venv"
  local pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  # The CPU build of torch lies on disk here; pointing pip at it keeps a plain
  # install from downloading a CUDA build.
  for dir in /opt/wheels; do
    [[ -d "$dir" ]] && pip+=(--find-links "$dir")
  done
  "${pip[@]}" -r "$req"
  if [[ -n "$nodeps" ]]; then "${pip[@]}" --no-deps -r "$nodeps"; fi
  echo "$want" > "$stamp"
  echo "peers environment ready: $venv"
}

make_venv "$root/.peers/venv" "$root/python/requirements-peers.txt" "$root/python/requirements-peers-nodeps.txt"
make_venv "$root/.peers/tfjs-venv" "$root/python/requirements-tfjs-converter.txt"
