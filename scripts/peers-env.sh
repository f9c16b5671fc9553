#!/usr/bin/env bash
# Makes the peers environment: a Python virtualenv at .peers/venv holding the
# real frameworks (python/requirements-peers.txt). Idempotent: a stamp records
# the requirements it was built from, so a second run costs nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.peers/venv"
req="$root/python/requirements-peers.txt"
stamp="$venv/.modelbridge-stamp"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "peers environment up to date: $venv"
  exit 0
fi

"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# The CPU build of torch lies on disk here; pointing pip at it keeps a plain
# install from downloading a CUDA build.
for dir in /opt/wheels; do
  [[ -d "$dir" ]] && pip+=(--find-links "$dir")
done
"${pip[@]}" -r "$req"
echo "$want" > "$stamp"
echo "peers environment ready: $venv"
