#!/usr/bin/env bash
# Creates .venv/ with Synapse's own JSON-signing libraries, pinned, for the cross-checks
# (tests compare our bytes with theirs) and the side-by-side benchmarks.
# Prints the path of the venv's python. Needs python3 and PyPI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c "import signedjson, canonicaljson" 2>/dev/null; then
  echo "$py"; exit 0
fi
command -v python3 >/dev/null || { echo "python-env: python3 not found" >&2; exit 1; }
python3 -m venv "$venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check -r "$root/scripts/python-requirements.txt" >&2
"$py" -c "import signedjson, canonicaljson" >&2
echo "$py"
