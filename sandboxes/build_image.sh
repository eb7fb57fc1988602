#!/usr/bin/env bash
# Build the sandbox image react-eval-sandbox:latest offline (debootstrap + docker import).
# The steps live in the package (react_eval/sandboxes/image/build_image.sh, beside the Dockerfile)
# so that a pip install can run them too: `react-eval sandbox build-image [--force|--rebuild-base]`.
# This wrapper runs the same script from a checkout, before or without an install.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/../react_eval/sandboxes/image/build_image.sh" "$@"
