#!/usr/bin/env bash
# Checks envoy/compose/envoy.yaml with `envoy --mode validate`, its /etc/toolgate paths mapped to
# this checkout; then its ECDS variant (docker-compose.ecds.yaml), with a resource from examples/demo/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ -f "$WASM" ] || die "$WASM is missing; run build_filter (scripts/test does) first"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/etc/ecds"
ln -s "$CERTS" "$tmp/etc/certs"
ln -s "$JWT_KEYS" "$tmp/etc/jwt"
ln -s "$WASM" "$tmp/etc/toolgate.wasm"
sed "s|/etc/toolgate|$tmp/etc|g" "$ROOT/envoy/compose/envoy.yaml" > "$tmp/envoy.yaml"
"$ENVOY" --mode validate -c "$tmp/envoy.yaml" -l error >"$tmp/out" 2>&1 \
  || { cat "$tmp/out" >&2; die "envoy/compose/envoy.yaml does not validate (output above)"; }
echo "envoy/compose/envoy.yaml: $(tail -1 "$tmp/out")"

# The ECDS variant: validate checks the bootstrap; it does not load the ECDS resource.
python3 "$ROOT/scripts/lib/render.py" "$ROOT/envoy/compose/envoy.yaml" "$tmp/ecds.yaml" ECDS_DIR=/etc/toolgate/ecds
sed -i "s|/etc/toolgate|$tmp/etc|g" "$tmp/ecds.yaml"
python3 "$ROOT/scripts/lib/ecds.py" "$tmp/etc/ecds/toolgate.ecds.json" --wasm "$tmp/etc/toolgate.wasm" \
  --config "$ROOT/envoy/toolgate.json" --policies "$ROOT/examples/demo" >/dev/null
"$ENVOY" --mode validate -c "$tmp/ecds.yaml" -l error >"$tmp/out" 2>&1 \
  || { cat "$tmp/out" >&2; die "the ECDS variant of envoy/compose/envoy.yaml does not validate (output above)"; }
echo "envoy/compose/envoy.yaml with ECDS_DIR: $(tail -1 "$tmp/out")"
