#!/usr/bin/env bash
# The main job: set up (idempotent), then the Pulumi program at the repo root (Pulumi.yaml) run
# with the real Pulumi CLI onto sandbox hosts: create an etcd cluster, scale it, destroy it.
# The same cluster through the sealant CLI instead: bash examples/cli-demo.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
source "$root/scripts/env.sh"
exec bash "$root/examples/demo.sh"
