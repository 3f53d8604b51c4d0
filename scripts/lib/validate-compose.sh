#!/usr/bin/env bash
# Checks envoy/compose/envoy.yaml with `envoy --mode validate`, its /etc/toolgate paths mapped to this checkout.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ -f "$WASM" ] || die "$WASM is missing; run build_filter (scripts/test does) first"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/etc"
ln -s "$CERTS" "$tmp/etc/certs"
ln -s "$JWT_KEYS" "$tmp/etc/jwt"
ln -s "$WASM" "$tmp/etc/toolgate.wasm"
sed "s|/etc/toolgate|$tmp/etc|g" "$ROOT/envoy/compose/envoy.yaml" > "$tmp/envoy.yaml"
"$ENVOY" --mode validate -c "$tmp/envoy.yaml" -l error >"$tmp/out" 2>&1 \
  || { cat "$tmp/out" >&2; die "envoy/compose/envoy.yaml does not validate (output above)"; }
echo "envoy/compose/envoy.yaml: $(tail -1 "$tmp/out")"
