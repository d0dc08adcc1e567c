#!/usr/bin/env bash
# The main job: set up (idempotent), then the Pulumi program at the repo root (Pulumi.yaml; the
# program is examples/pulumi-kubernetes, TypeScript) run with the real Pulumi CLI onto three
# Kubernetes-capable sandbox hosts: sealant's Kubernetes base image and an app image FROM it are
# built, `pulumi up` creates a real cluster (1 master + 1 worker), kubectl with the stack's
# kubeconfig output shows the nodes and the app's pods, a config change joins a second worker,
# `pulumi destroy` resets every host, the sandbox goes down (~3 minutes). DEMO_UPGRADE=1: the
# cluster starts on Kubernetes v1.30.14 and a new image upgrades it to v1.31.4 node by node.
# The etcd example with Pulumi: bash examples/pulumi-etcd/demo.sh; with the sealant CLI:
# bash examples/cli-demo.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
source "$root/scripts/env.sh"
exec bash "$root/examples/demo.sh"
