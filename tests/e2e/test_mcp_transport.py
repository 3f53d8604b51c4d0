"""End-to-end: MCP's transport through the shipped Envoy config: both protocol eras' methods,
mirrored headers checked against the body, body limits alike on HTTP/1.1 and HTTP/2."""
import json
import os
import subprocess
import tempfile

from harness import CERTS, GatewayTestCase

MODERN = "2026-07-28"


def modern(method, params=None, id=1):
    """A 2026-07-28 request: its version in _meta, as the SDKs send it."""
    params = dict(params or {})
    params["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN,
                       "io.modelcontextprotocol/clientCapabilities": {}}
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params}


def mirrors(method, name=None, **extra):
    headers = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    headers.update(extra)
    return headers


class Transport(GatewayTestCase):
    def reached(self, needle):
        self.gw.upstream_barrier()
        return [r for r in self.gw.upstream_requests() if needle in r["body"]]

    def test_the_current_protocol_is_not_refused_at_discovery(self):
        # The shipped defaults (policies/protocol.cedar) permit discovery to trusted agents:
        # a 2026-07-28 client is no longer pushed back to the old protocol.
        for method in ("server/discover", "tools/list", "completion/complete"):
            rid = f"era-{method}"
            r = self.gw.request("POST", "/mcp", modern(method, id=method),
                                headers=mirrors(method, **{"x-request-id": rid}))
            self.assertEqual(r.status, 200, r.body)
            self.assertNotIn("error", r.json(), r.body)
            record = self.gw.decision_for_request(rid)
            self.assertEqual((record["action"], record["decision"]), (method, "allow"))
            self.assertEqual(record["protocol_version"], MODERN)
            self.assertEqual(record["policies"], ["agents-may-use-the-protocol"])
        # The 2025 era's session-level methods too.
        for method, params in (("logging/setLevel", {"level": "info"}), ("resources/subscribe", {"uri": "docs://a"})):
            r = self.gw.mcp(method, params, id=method, headers={"mcp-protocol-version": "2025-11-25"})
            self.assertEqual(r.status, 200, r.body)
            self.assertNotIn("error", r.json(), r.body)

    def test_a_header_naming_an_allowed_tool_over_a_forbidden_call_is_refused(self):
        attack = modern("tools/call", {"name": "delete_database", "arguments": {}}, id="attack")
        r = self.gw.request("POST", "/mcp", attack, headers=mirrors("tools/call", "read_file"))
        self.assertEqual(r.status, 400, r.body)
        error = r.json()["error"]
        self.assertEqual((error["code"], error["data"]["reason"]), (-32020, "header_mismatch"))
        self.assertEqual(r.json()["id"], "attack")
        record = self.gw.decision(r.header("x-toolgate-decision-id"))
        self.assertEqual(record["reason"], "header_mismatch")
        self.assertIn("delete_database", " ".join(record["errors"]))
        self.assertEqual(self.reached("delete_database"), [], "the mismatched call reached the upstream")
        # The reverse: the header names the forbidden tool, the body calls an allowed one.
        reverse = modern("tools/call", {"name": "read_file", "arguments": {"path": "x"}}, id="reverse")
        r = self.gw.request("POST", "/mcp", reverse, headers=mirrors("tools/call", "delete_database"))
        self.assertEqual((r.status, r.json()["error"]["code"]), (400, -32020), r.body)
        self.assertEqual(self.reached('"reverse"'), [])
        # Headers that agree: decided on policy and forwarded.
        fine = modern("tools/call", {"name": "read_file", "arguments": {"path": "mirrored"}}, id="fine")
        r = self.gw.request("POST", "/mcp", fine, headers=mirrors("tools/call", "read_file"))
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn("error", r.json(), r.body)
        [seen] = self.reached("mirrored")
        # The upstream gets its own name as Host (SDK servers' DNS-rebinding checks).
        self.assertEqual(seen["headers"].get("host"), f"127.0.0.1:{self.gw.upstream_port}")

    def test_a_missing_required_header_is_refused(self):
        call = modern("tools/call", {"name": "read_file", "arguments": {}}, id="bare")
        r = self.gw.request("POST", "/mcp", call, headers={"mcp-protocol-version": MODERN})
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.json()["error"]["code"], -32020)
        self.assertIn("missing", r.json()["error"]["message"] + " ".join(
            self.gw.decision(r.header("x-toolgate-decision-id"))["errors"]))

    def post_http1(self, path, body, request_id):
        """curl over HTTP/1.1: (status, response body)."""
        cmd = ["curl", "-s", "--http1.1", "--cacert", os.path.join(CERTS, "ca.crt"),
               "--cert", os.path.join(CERTS, "reader.crt"), "--key", os.path.join(CERTS, "reader.key"),
               "-o", "-", "-w", "\n%{http_code}", f"https://localhost:{self.gw.port}/mcp",
               "-H", "content-type: application/json", "-H", f"x-request-id: {request_id}",
               "--data-binary", f"@{path}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
        body, _, status = out.rpartition("\n")
        return int(status), body

    def post_http2(self, path, body, request_id):
        """node's http2 client: (status, response body). curl 7.88 drops a response that
        arrives before its upload ends (its HTTP/2 stream is reset), so it can't tell."""
        out = subprocess.run(["node", "--input-type=module", "-e", H2_POST, str(self.gw.port), CERTS, path,
                              request_id], capture_output=True, text=True, timeout=30)
        answer = json.loads(out.stdout or "{}")
        self.assertNotIn("error", answer, out.stderr)
        return answer["status"], answer["body"]

    def test_a_3_mib_body_gets_toolgate_s_413_on_http1_and_http2(self):
        # Above max_body_bytes (1 MiB) and above Envoy's connection buffer (2 MiB): the
        # refusal is toolgate's, with a decision naming the caller, on both codecs.
        big = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                          "params": {"name": "read_file", "arguments": {"content": "x" * (3 << 20)}}})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(big)
        try:
            for post, rid in ((self.post_http1, "big-http1"), (self.post_http2, "big-http2")):
                status, body = post(f.name, big, rid)
                self.assertEqual(status, 413, body[:300])
                self.assertEqual(json.loads(body)["error"]["data"]["reason"], "body_too_large", body[:300])
                record = self.gw.decision_for_request(rid)
                self.assertEqual(record["reason"], "body_too_large")
                self.assertEqual(record["principal"], "spiffe://toolgate.test/agent/reader")
        finally:
            os.unlink(f.name)
        self.assertEqual(self.reached("xxxxxxxx"), [])


# node: POST a file over HTTP/2 with a client certificate; prints {"status", "body"} or {"error"}.
H2_POST = """
import http2 from 'node:http2'; import fs from 'node:fs';
const [port, certs, file, rid] = process.argv.slice(1);
const client = http2.connect(`https://localhost:${port}`, {ca: fs.readFileSync(`${certs}/ca.crt`),
  cert: fs.readFileSync(`${certs}/reader.crt`), key: fs.readFileSync(`${certs}/reader.key`)});
const body = fs.readFileSync(file);
const req = client.request({':method': 'POST', ':path': '/mcp', 'content-type': 'application/json',
  'content-length': body.length, 'x-request-id': rid});
let status, data = '';
req.on('response', h => { status = h[':status']; });
req.on('data', d => { data += d; });
const done = extra => { console.log(JSON.stringify({status, body: data, ...extra})); client.close(); };
req.on('end', () => done({}));
req.on('error', e => done({error: String(e)}));
req.end(body);
"""
