#!/usr/bin/env bash
# Generates a development CA, a gateway server certificate and SPIFFE client certificates.
# Usage: certs.sh DIR   (idempotent: keeps an existing set)
set -euo pipefail
dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f ca.crt ] && [ -f reader.crt ] && [ -f controller.crt ] && exit 0

echo "==> generating a development CA and SPIFFE certificates in $dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=toolgate dev CA" \
  -keyout ca.key -out ca.crt -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# issue NAME SAN... : a leaf certificate signed by the dev CA
issue() {
  local name=$1; shift
  local san
  san=$(IFS=,; echo "$*")
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:false\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

issue gateway "DNS:localhost" "IP:127.0.0.1" "URI:spiffe://toolgate.test/gateway"
issue reader "URI:spiffe://toolgate.test/agent/reader"
issue writer "URI:spiffe://toolgate.test/agent/writer"
issue payments "URI:spiffe://toolgate.test/agent/payments"
issue stranger "URI:spiffe://toolgate.test/agent/stranger"
issue untrusted "URI:spiffe://evil.test/agent/reader"
# The task controller that may revoke tasks and tokens.
issue controller "URI:spiffe://toolgate.test/controller"
# Broken identities for the adversarial tests.
issue multi "URI:spiffe://toolgate.test/agent/reader" "URI:spiffe://toolgate.test/agent/payments"
issue odd "URI:spiffe://toolgate.test/agent/re@der"
issue nospiffe "DNS:agent.toolgate.test"
