#!/usr/bin/env bash
# The README's test command: installs what the suite needs (idempotent), then runs it all.
# Works on a fresh Debian 12 machine with the Rust toolchain; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests' real peers need (none yet beyond the toolchain).
APT_PACKAGES=()
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

echo "== cargo test --workspace"
cargo test -j 2 --workspace --all-targets
cargo test -j 2 --workspace --doc
