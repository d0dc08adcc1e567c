#!/usr/bin/env bash
# The main job: set up (idempotent), then build cluster images and run one onto sandbox hosts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
source "$root/scripts/env.sh"
exec bash "$root/examples/demo.sh"
