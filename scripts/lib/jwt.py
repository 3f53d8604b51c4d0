#!/usr/bin/env python3
"""Development JWT tooling for jwt_authn: signing keys, their JWKS, and RS256 tokens.

  jwt.py init DIR                          create DIR/<name>.key and DIR/<name>.jwks.json for
                                           the issuers "agents" and "approvals" (kept if present)
  jwt.py mint DIR ISSUER CLAIMS_JSON       print a token signed by DIR/<ISSUER>.key; "iat" and
                                           "exp" default to now and now + 600 s
Signing uses the openssl command line, so nothing beyond Python's standard library is needed.
"""
import base64
import json
import os
import subprocess
import sys
import time

ISSUERS = {"agents": "https://issuer.toolgate.test", "approvals": "https://approvals.toolgate.test"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def init(directory):
    os.makedirs(directory, exist_ok=True)
    for name in ISSUERS:
        key = os.path.join(directory, f"{name}.key")
        jwks = os.path.join(directory, f"{name}.jwks.json")
        if os.path.exists(key) and os.path.exists(jwks):
            continue
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                                 capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": name,
               "n": b64url(bytes.fromhex(modulus)), "e": b64url((65537).to_bytes(3, "big"))}
        with open(jwks, "w", encoding="utf-8") as f:
            json.dump({"keys": [jwk]}, f)


def mint(directory, issuer, claims):
    now = int(time.time())
    payload = {"iss": ISSUERS[issuer], "iat": now, "exp": now + 600, **claims}
    header = {"alg": "RS256", "typ": "JWT", "kid": issuer}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(directory, f"{issuer}.key")],
                               input=signing_input.encode(), check=True, capture_output=True).stdout
    return f"{signing_input}.{b64url(signature)}"


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "init":
        init(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "mint":
        print(mint(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
