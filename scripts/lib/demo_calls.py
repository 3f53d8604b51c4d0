#!/usr/bin/env python3
"""Sends the demo's scripted agent calls through the gateway and prints each outcome."""
import http.client
import json
import os
import ssl
import sys
import time
import urllib.request

port, certs, jwt_keys, risk_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
HERE = os.path.dirname(os.path.abspath(__file__))
IDENTITIES = {name: f"spiffe://toolgate.test/agent/{name}" for name in ("reader", "writer", "payments")}
IDENTITIES["untrusted"] = "spiffe://evil.test/agent/reader"
IDENTITIES["controller"] = "spiffe://toolgate.test/controller"


def mint(issuer, **claims):
    import subprocess
    return subprocess.run([sys.executable, os.path.join(HERE, "jwt.py"), "mint", jwt_keys, issuer, json.dumps(claims)],
                          check=True, capture_output=True, text=True).stdout.strip()


def call(title, cert, body=None, method="POST", path="/mcp", headers=None):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(certs, f"{cert}.crt"), os.path.join(certs, f"{cert}.key"))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    hdrs = {"content-type": "application/json"} if body else {}
    hdrs.update(headers or {})
    conn.request(method, path, body=json.dumps(body) if body else None, headers=hdrs)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        refused_rpc = "error" in json.loads(text)
    except (ValueError, TypeError):
        refused_rpc = False
    # A policy's no to an MCP call is HTTP 200 with a JSON-RPC error (what every MCP SDK
    # raises for that one call); the caller's and the transport's keep their HTTP status.
    blocked = resp.status >= 400 or refused_rpc
    verdict = "\033[31mBLOCKED\033[0m" if blocked else "\033[32mALLOWED\033[0m"
    shown = {k: (v[:24] + "...") if len(v) > 40 else v for k, v in (headers or {}).items()}
    who = IDENTITIES.get(cert, "no client certificate")
    print(f"\n{verdict} {resp.status}  {title}\n  as:   {who}")
    if shown:
        print(f"  with: {', '.join(f'{k}: {v}' for k, v in shown.items())}")
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and "error" in parsed:
            print(f"  got:  JSON-RPC error {parsed['error']['code']} for id {parsed['id']!r}: "
                  f"{parsed['error']['data']['reason']} {parsed['error']['data']['policies']}")
            if "retry_after" in parsed["error"]["data"]:
                print(f"        Retry-After: {resp.getheader('retry-after')} s")
            if "approve" in parsed["error"]["data"]:
                print(f"        approve: {json.dumps(parsed['error']['data']['approve'])}")
        elif isinstance(parsed, dict) and "reason" in parsed:
            print(f"  got:  problem {parsed['reason']} (decision {parsed['decision_id']})")
        else:
            print(f"  got:  {text[:120]}")
    except ValueError:
        print(f"  got:  {text[:120]}")
    return parsed if 'parsed' in locals() else None


def risk_feed(method, path, body=None):
    """Talks to the sample risk feed (scripts/lib/risk_feed.py)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{risk_port}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


def next_polls(count=2, timeout=10):
    """Waits until toolgate has polled the risk feed `count` more times."""
    start = risk_feed("GET", "/status")["polls"]
    deadline = time.time() + timeout
    while risk_feed("GET", "/status")["polls"] < start + count and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)


def tool(name, arguments, id):
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


next_polls(1)  # the first poll of the risk feed: until then risk is stale
call("a reader lists tools", "reader", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
call("a reader reads a file (low sensitivity)", "reader", tool("read_file", {"path": "README.md"}, 2))
call("a writer writes without declaring intent", "writer", tool("write_file", {"path": "notes.md", "content": "hi"}, 3))
call("the same write, with intent and task declared", "writer",
     tool("write_file", {"path": "notes.md", "content": "hi"}, 4),
     headers={"x-agent-intent": "write", "x-agent-task": "DOCS-12", "x-agent-session": "demo-1"})
call("a payments agent refunds 40 (argument-level policy)", "payments", tool("refund", {"order_id": "A1", "amount": 40}, 5))
call("a payments agent refunds 4000", "payments", tool("refund", {"order_id": "A2", "amount": 4000}, 6))
call("a reader calls a forbidden tool", "reader", tool("delete_database", {}, 7))
call("an unauthenticated call", None, tool("read_file", {"path": "README.md"}, 8))
call("a certificate from an untrusted trust domain", "untrusted", tool("read_file", {"path": "README.md"}, 9))
call("REST: GET the weather API", "reader", method="GET", path="/weather/v1/forecast?city=Paris")
call("REST: POST to the weather API", "reader", method="POST", path="/weather/v1/alerts",
     headers={"content-type": "text/plain"}, body=None)

transfer = tool("wire_transfer", {"to_account": "DE89-3704", "amount": 2500}, 10)
refused = call("a payments agent wires money without a human approval", "payments", transfer)
approve = refused["error"]["data"]["approve"]
approval = mint("approvals", approver="alice@example.com", sub=approve["agent"], server=approve["server"],
                tool=approve["tool"], args_digest=approve["args_digest"])
call("the same call with alice's approval of exactly these arguments", "payments", transfer,
     headers={"x-approval-token": approval})
call("that approval reused for a larger amount", "payments",
     tool("wire_transfer", {"to_account": "DE89-3704", "amount": 250000}, 11), headers={"x-approval-token": approval})
call("a reader presents a token issued to the writer (replayed credential)", "reader",
     tool("read_file", {"path": "README.md"}, 12),
     headers={"authorization": "Bearer " + mint("agents", sub=IDENTITIES["writer"], aud="tools")})
call("the controller revokes task DOCS-12 at task end", "controller", {"task": "DOCS-12"},
     path="/.toolgate/revoke")
call("the writer tries to keep working on DOCS-12", "writer", tool("write_file", {"path": "notes.md", "content": "more"}, 13),
     headers={"x-agent-intent": "write", "x-agent-task": "DOCS-12", "x-agent-session": "demo-1"})

print("\n--- behaviour: session history, live risk, rate limits ---")
secret_session = {"x-agent-session": "demo-2"}
call("a reader reads a secret in session demo-2", "reader", tool("read_secret", {"name": "db-password"}, 20),
     headers=secret_session)
call("then posts to a web hook in the same session (exfiltration)", "reader",
     tool("post_webhook", {"url": "https://hooks.example", "body": "hello"}, 21), headers=secret_session)
call("the same post from a session that read no secret", "reader",
     tool("post_webhook", {"url": "https://hooks.example", "body": "hello"}, 22), headers={"x-agent-session": "demo-3"})

risk_feed("PUT", "/risk", {"agents": {IDENTITIES["payments"]: {"score": 95, "flags": ["compromised"]}}})
next_polls()
call("the risk feed flags the payments agent as compromised; it lists tools", "payments",
     {"jsonrpc": "2.0", "id": 23, "method": "tools/list"})
risk_feed("PUT", "/risk", {"agents": {}})
next_polls()
risk_feed("POST", "/fail", {"status": 503})
next_polls()
call("the risk feed is down (stale): a reader reads a file", "reader", tool("read_file", {"path": "README.md"}, 24))
call("the risk feed is down (stale): payments refunds 10 (high sensitivity)", "payments",
     tool("refund", {"order_id": "A3", "amount": 10}, 25))
risk_feed("POST", "/fail", {"status": None})
next_polls()
for n in range(4):
    call(f"the feed is back and clean: refund {n + 2} of 5 this minute", "payments",
         tool("refund", {"order_id": f"B{n}", "amount": 10}, 30 + n))
call("a 6th refund within the minute (policy: at most 5)", "payments",
     tool("refund", {"order_id": "B9", "amount": 10}, 39))
