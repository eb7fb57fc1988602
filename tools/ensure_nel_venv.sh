#!/usr/bin/env bash
# A venv with NeMo Evaluator (nemo-evaluator 0.3.0, Python >= 3.12) for the benchmark's `nel` client,
# outside the repo. Prints the venv's python on stdout; on failure, the reason on stderr and exit 1.
#   tools/ensure_nel_venv.sh            # ~/.cache/react-eval-bench/nel-venv
#   NEL_VENV=/some/dir NEL_VERSION=0.3.0 tools/ensure_nel_venv.sh
set -euo pipefail
venv="${NEL_VENV:-$HOME/.cache/react-eval-bench/nel-venv}"
version="${NEL_VERSION:-0.3.0}"
py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('nemo-evaluator') != '$version')" 2>/dev/null; then
    echo "$py"; exit 0
fi
base="${NEL_PYTHON:-}"
if [ -z "$base" ]; then
    for cand in python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            base="$(command -v "$cand")"; break
        fi
    done
fi
if [ -z "$base" ]; then
    echo "no Python >= 3.12 found (nemo-evaluator $version needs it; set NEL_PYTHON)" >&2; exit 1
fi
mkdir -p "$(dirname "$venv")"
"$base" -m venv "$venv" >&2
# aiohttp and orjson: the wiring's own HTTP to the scripted model and the Gym server, as in the bare loop
"$venv/bin/pip" install -q "nemo-evaluator==$version" aiohttp orjson >&2 || {
    echo "pip install nemo-evaluator==$version failed" >&2; exit 1; }
echo "$py"
