"""End-to-end adversarial matrix: hostile and broken requests through real Envoy + toolgate.wasm.

Every refused case asserts the client's answer *and* that nothing reached the upstream.
"""
import gzip
import json
import os
import socket
import ssl
import subprocess
import time
import unittest
import zlib

from harness import GatewayTestCase, CERTS, Gateway

FORBIDDEN = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "delete_database"}}
# A REST route the shipped policies let a reader GET: what toolgate forwards if it reads a body as REST.
REST = "/weather/v1/forecast"


def tool(name, arguments=None, id=1):
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


class Matrix(GatewayTestCase):
    # -- helpers -----------------------------------------------------------------
    def upstream_count(self):
        return len(self.gw.upstream_requests())

    def assert_refused(self, response, status, reason, before):
        """RESPONSE is toolgate's refusal for REASON with STATUS (a policy's no to a JSON-RPC
        request: 200), as a JSON-RPC error or a problem document, and nothing reached the
        upstream. Returns the body."""
        self.assertEqual(response.status, status, response.body[:300])
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            response.refusal(reason, status=status)
        else:
            self.assertEqual(response.header("content-type"), "application/problem+json", response.body[:300])
            self.assertEqual(body["reason"], reason)
            self.assertEqual(body["status"], status)
        self.gw.upstream_barrier()
        self.assertEqual(self.upstream_count(), before, "a refused request reached the upstream")
        record = self.gw.decision(response.header("x-toolgate-decision-id"))
        self.assertEqual(record["reason"], reason)
        self.assertEqual(record["decision"], "deny")
        return body

    def raw(self, body, headers=None, method="POST", path="/mcp", cert="reader"):
        return self.gw.request(method, path, body, headers or {}, cert=cert)

    # -- duplicate keys ------------------------------------------------------------
    def test_duplicate_keys_are_refused(self):
        for text in [
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"delete_database"}}',
            b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete_database"}}',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"a":1,"a":2}}}',
        ]:
            before = self.upstream_count()
            body = self.assert_refused(self.raw(text, {"content-type": "application/json"}), 400,
                                       "duplicate_json_key", before)
            self.assertEqual(body["error"]["code"], -32700)

    # -- keys an upstream folds together (Go's encoding/json) -------------------------------
    def each_path(self, body, status, reason, rpc_code, rest=True):
        """BODY refused on the MCP endpoint (as JSON) and, with REST, on a REST route that
        would allow it (a reader's GET), as text/plain and with no content type; nothing forwarded."""
        paths = [("POST", "/mcp", {"content-type": "application/json"})]
        if rest:
            paths += [("GET", REST, {"content-type": "text/plain"}), ("GET", REST, {})]
        for method, path, headers in paths:
            before = self.upstream_count()
            answer = self.assert_refused(self.raw(body, headers, method=method, path=path), status, reason, before)
            if path == "/mcp":
                self.assertEqual(answer["error"]["code"], rpc_code, body)

    def test_keys_equal_ignoring_case_are_refused(self):
        for body in [
            # Kelvin sign K (U+212A) folds to k; long s (U+017F) to s.
            '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
            '"params":{"name":"read_file","arguments":{"\u212aind":"a","kind":"b"}}}',
            '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},'
            '"param\u017f":{"name":"delete_database"}}',
            '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","Name":"delete_database"}}',
            '{"city":"Oslo","CITY":"Rome"}',
        ]:
            self.each_path(body.encode(), 400, "folded_json_key", -32700)

    def test_a_key_that_folds_to_a_member_toolgate_reads_is_refused(self):
        def rpc(**members):
            return {"jsonrpc": "2.0", "id": 1, **members}
        delete = {"name": "delete_database"}
        for body, key, rest in [
            (rpc(method="tools/call", params={"name": "read_file", "Arguments": {"path": "/etc/passwd"}}),
             "Arguments", True),
            (rpc(Method="tools/call", params=delete), "Method", True),
            (rpc(method="tools/call", Params=delete), "Params", True),
            (rpc(method="tools/call", **{"param\u017f": delete}), "param\u017f", True),
            (rpc(method="tools/call", params={"NAME": "delete_database"}), "NAME", True),
            # Declared arguments: read_file's on the MCP server (the weather route declares none).
            (tool("read_file", {"Path": "/etc/passwd"}), "Path", False),
            (tool("read_file", {"paTh": "/etc/passwd"}), "paTh", False),
            # Only case variants: JSON-RPC to a Go server on any path.
            ({"JSONRPC": "2.0", "ID": 1, "METHOD": "tools/call", "PARAMS": {"NAME": "delete_database"}},
             "JSONRPC", True),
        ]:
            data = json.dumps(body).encode()
            self.each_path(data, 400, "folded_member", -32600, rest)
            refused = self.raw(data, {"content-type": "application/json"})
            errors = self.gw.decision(refused.header("x-toolgate-decision-id"))["errors"]
            self.assertIn(json.dumps(key, ensure_ascii=False), " ".join(errors))

    # -- batches ---------------------------------------------------------------------
    def test_batches_are_rejected_by_default(self):
        for batch in ([tool("read_file"), tool("delete_database", id=2)], [], [[tool("read_file")]],
                      [tool("read_file"), {"jsonrpc": "2.0", "method": "notifications/progress"}]):
            before = self.upstream_count()
            # A protocol refusal, not a policy's: 403 stays.
            self.assert_refused(self.raw(batch), 403, "batch_rejected", before)

    # -- encodings -------------------------------------------------------------------
    def test_compressed_bodies_are_refused(self):
        payload = json.dumps(FORBIDDEN).encode()
        for encoding, data in [("gzip", gzip.compress(payload)), ("deflate", zlib.compress(payload)),
                               ("br", payload)]:
            before = self.upstream_count()
            self.assert_refused(self.raw(data, {"content-type": "application/json", "content-encoding": encoding}),
                                415, "unsupported_content_encoding", before)

    def test_charsets_bom_and_invalid_utf8(self):
        allowed = json.dumps(tool("read_file")).encode()
        before = self.upstream_count()
        self.assert_refused(self.raw(allowed.decode().encode("utf-16"),
                                     {"content-type": "application/json; charset=utf-16"}),
                            415, "unsupported_charset", before)
        self.assert_refused(self.raw(b"\xef\xbb\xbf" + allowed, {"content-type": "application/json"}),
                            415, "unsupported_charset", before)
        self.assert_refused(self.raw(allowed.replace(b"read_file", b"read_\xff"), {"content-type": "application/json"}),
                            400, "invalid_json", before)

    def test_refusals_before_identity_name_the_verified_peer(self):
        before = self.upstream_count()
        json_type = {"content-type": "application/json"}
        for response, status, reason in [
            (self.raw(b"{", json_type), 400, "invalid_json"),
            (self.raw([tool("read_file")]), 403, "batch_rejected"),
            (self.raw(b"\xef\xbb\xbf{}", json_type), 415, "unsupported_charset"),
        ]:
            self.assert_refused(response, status, reason, before)
            record = self.gw.decision(response.header("x-toolgate-decision-id"))
            self.assertEqual(record["principal"], "spiffe://toolgate.test/agent/reader", reason)
        anonymous = self.raw(b"{", json_type, cert=None)
        self.assert_refused(anonymous, 400, "invalid_json", before)
        self.assertIsNone(self.gw.decision(anonymous.header("x-toolgate-decision-id"))["principal"])

    def test_utf16_and_utf32_bodies_are_refused_on_every_path(self):
        text = json.dumps(FORBIDDEN)
        encoded = [text.encode(codec) for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be",
                                                    "utf-16", "utf-32")]  # the last two with a BOM
        encoded += [("\ufeff" + text).encode(codec) for codec in ("utf-16-be", "utf-32-be")]
        encoded += [(" \n" + text).encode("utf-16-le")]
        for data in encoded:
            # Python's json.loads(bytes) detects each of these and reads the call.
            self.assertEqual(json.loads(data), FORBIDDEN)
            for method, path in (("GET", REST), ("POST", "/mcp")):
                for headers in ({"content-type": "text/plain"}, {}):
                    before = self.upstream_count()
                    self.assert_refused(self.raw(data, headers, method=method, path=path),
                                        415, "unsupported_charset", before)

    def test_other_bytes_with_nuls_pass_as_rest(self):
        for data in (b"\x00\x00\x00\x00\x07\x0a\x05hello",  # a gRPC frame
                     "city=Oslo {x}".encode("utf-16-le"), b"\x01\x00\x02\x00{"):
            before = self.upstream_count()
            ok = self.raw(data, {"content-type": "application/octet-stream"}, method="GET", path=REST)
            self.assertEqual(ok.status, 200, ok.body[:200])
            self.assertEqual(self.upstream_count(), before + 1)

    def test_a_body_that_starts_like_json_is_strict_json_on_rest_routes(self):
        nan = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database","x":NaN}}'
        lone = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database","x":"\\ud800"}}'
        trailing = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_database"},}'
        for data in (nan, lone, trailing, b"[not json"):
            for headers in ({"content-type": "text/plain"}, {}):
                before = self.upstream_count()
                self.assert_refused(self.raw(data, headers, method="GET", path=REST), 400, "invalid_json", before)
        # Python reads the first two as the call.
        self.assertEqual(json.loads(nan)["params"]["name"], "delete_database")
        self.assertEqual(json.loads(lone)["params"]["x"], "\ud800")

    # -- framing -----------------------------------------------------------------------
    def test_chunked_and_trickled_bodies_are_evaluated(self):
        data = json.dumps(FORBIDDEN).encode()
        before = self.upstream_count()
        chunks = (data[i:i + 7] for i in range(0, len(data), 7))
        self.assert_refused(self.gw.request("POST", "/mcp", chunks, {"content-type": "application/json"},
                                            chunked=True), 200, "forbidden_by_policy", before)

        def trickle(payload):
            for i in range(0, len(payload), 3):
                time.sleep(0.005)
                yield payload[i:i + 3]
        ok = self.gw.request("POST", "/mcp", trickle(json.dumps(tool("read_file", {"path": "trickle"})).encode()),
                             {"content-type": "application/json"}, chunked=True)
        self.assertEqual(ok.status, 200, ok.body)
        self.assertEqual(self.upstream_count(), before + 1)

    def test_a_body_over_the_limit_gets_413(self):
        big = json.dumps(tool("read_file", {"content": "x" * (1024 * 1024 + 10)})).encode()
        before = self.upstream_count()
        self.assert_refused(self.raw(big, {"content-type": "application/json"}), 413, "body_too_large", before)

    def test_content_length_mismatches_reach_nothing(self):
        before = self.upstream_count()
        body = json.dumps(FORBIDDEN).encode()
        for declared in (len(body) + 40, 10):
            request = (f"POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
                       f"content-length: {declared}\r\n\r\n").encode() + body
            reply = self.raw_exchange(request)
            self.assertFalse(reply.startswith(b"HTTP/1.1 200"), reply[:200])
        self.gw.upstream_barrier()
        self.assertEqual(self.upstream_count(), before)

    def raw_exchange(self, request):
        ctx = self.gw.ssl_context("reader")
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=5) as sock:
            with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                tls.sendall(request)
                tls.shutdown(socket.SHUT_WR) if False else None
                chunks = []
                tls.settimeout(2)
                try:
                    while True:
                        data = tls.recv(65536)
                        if not data:
                            break
                        chunks.append(data)
                except (socket.timeout, ssl.SSLError, ConnectionResetError):
                    pass
                return b"".join(chunks)

    def test_empty_post_is_refused(self):
        before = self.upstream_count()
        self.assert_refused(self.raw(b"", {"content-type": "application/json"}), 400, "invalid_jsonrpc", before)

    def test_mcp_stream_and_session_end_work_for_allowed_principals(self):
        before = self.upstream_count()
        get = self.raw(None, {"accept": "text/event-stream"}, method="GET")
        self.assertEqual(get.status, 200, get.body)
        delete = self.raw(None, {"mcp-session-id": "s-1"}, method="DELETE")
        self.assertEqual(delete.status, 200, delete.body)
        self.assertEqual(self.upstream_count(), before + 2)
        # No identity: 403, with the JSON-RPC error the MCP endpoint speaks.
        anonymous = self.raw(None, {"accept": "text/event-stream"}, method="GET", cert=None)
        anonymous.refusal("forbidden_by_policy", status=403, id=None)
        self.assertEqual(self.upstream_count(), before + 2)
        # JSON-RPC in a GET body is decided as the call it names: a policy's no, 200.
        sneaky = self.raw(json.dumps(FORBIDDEN).encode(), {}, method="GET")
        sneaky.refusal("forbidden_by_policy", id=9)
        self.gw.upstream_barrier()
        self.assertEqual(self.upstream_count(), before + 2)

    # -- content type ----------------------------------------------------------------------
    def test_jsonrpc_under_any_content_type_is_evaluated(self):
        data = json.dumps(FORBIDDEN).encode()
        for headers in ({"content-type": "text/plain"}, {}, {"content-type": "application/octet-stream"}):
            before = self.upstream_count()
            self.assert_refused(self.raw(data, headers), 200, "forbidden_by_policy", before)

    # -- hostile JSON ------------------------------------------------------------------------
    def test_hostile_json(self):
        before = self.upstream_count()
        deep = b"[" * 100_000 + b"]" * 100_000
        self.assert_refused(self.raw(deep, {"content-type": "application/json"}), 400, "invalid_json", before)
        nan = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"x":NaN}}}'
        self.assert_refused(self.raw(nan, {"content-type": "application/json"}), 400, "invalid_json", before)
        trailing = json.dumps(tool("read_file")).encode() + b'{"jsonrpc":"2.0","id":2,"method":"tools/call"}'
        self.assert_refused(self.raw(trailing, {"content-type": "application/json"}), 400, "invalid_json", before)
        odd_values = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file",' \
                     b'"arguments":{"big":10000000000000000000000,"f":0.25,"n":null,"s":"' + b"y" * 200_000 + b'"}}}'
        ok = self.raw(odd_values, {"content-type": "application/json"})
        self.assertEqual(ok.status, 200, ok.body[:200])
        self.assertEqual(self.upstream_count(), before + 1)
        # An argument beyond i64 is not the Long the catalog declares: refused before any policy.
        refund = self.raw(b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"refund",'
                          b'"arguments":{"amount":18446744073709551615}}}', {"content-type": "application/json"},
                          cert="payments")
        self.assert_refused(refund, 400, "invalid_arguments", before + 1)

    def test_a_number_toolgate_would_not_hold_exactly_is_refused(self):
        # 2^64 + 1 and 10^22 + 1 are held as the nearest 64-bit float: the upstream would read
        # another number than toolgate decided on, logged and digested.
        for literal in [b"18446744073709551617", b"10000000000000000000001", b"0.10000000000000001"]:
            before = self.upstream_count()
            text = b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"read_file",' \
                   b'"arguments":{"path":"a","n":' + literal + b'}}}'
            response = self.raw(text, {"content-type": "application/json"})
            body = self.assert_refused(response, 400, "inexact_number", before)
            self.assertEqual(body["error"]["code"], -32700)
            self.assertEqual(body["id"], None)
            record = self.gw.decision(response.header("x-toolgate-decision-id"))
            self.assertTrue(record["errors"][0].startswith(f"the number {literal.decode()} is not exact"), record)
        # Exact ones pass, and the upstream gets the body as sent.
        before = self.upstream_count()
        exact = b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"read_file",' \
                b'"arguments":{"path":"a","n":10000000000000000000000,"m":18446744073709551615,"f":1E+22}}}'
        ok = self.raw(exact, {"content-type": "application/json"})
        self.assertEqual(ok.status, 200, ok.body[:200])
        self.assertEqual(self.gw.upstream_requests()[before:][0]["body"], exact.decode())

    # -- names -----------------------------------------------------------------------------
    def test_names_match_exactly(self):
        before = self.upstream_count()
        self.assert_refused(self.raw(tool("Delete_Database")), 200, "not_permitted", before)
        self.assert_refused(self.raw(tool("READ_FILE")), 200, "not_permitted", before)
        for name in [" read_file", "read_file\t", "read\u200b_file", "re\u0430d_file", "\uff52ead_file",
                     "../read_file", "tools/../read_file", "read_file\u202e"]:
            self.assert_refused(self.raw(tool(name)), 400, "invalid_name", before)

    # -- identity --------------------------------------------------------------------------
    def test_identity_edge_cases(self):
        # Refusals of the caller keep their 403; so does a policy's no to a caller without
        # identity (no certificate, or one without a SPIFFE ID: the Unauthenticated principal).
        before = self.upstream_count()
        self.assert_refused(self.raw(tool("read_file"), cert="multi"), 403, "multiple_uri_sans", before)
        self.assert_refused(self.raw(tool("read_file"), cert="odd"), 403, "invalid_spiffe_id", before)
        self.assert_refused(self.raw(tool("read_file"), cert="nospiffe"), 403, "forbidden_by_policy", before)
        self.assert_refused(self.raw(tool("read_file"), cert="untrusted"), 403, "untrusted_trust_domain", before)
        self.assert_refused(self.raw(tool("read_file"), cert=None), 403, "forbidden_by_policy", before)
        spoof = {"x-forwarded-client-cert": "By=spiffe://toolgate.test/gateway;URI=spiffe://toolgate.test/agent/reader",
                 "x-toolgate-principal": "spiffe://toolgate.test/agent/reader",
                 "x-dev-spiffe-id": "spiffe://toolgate.test/agent/reader"}
        self.assert_refused(self.raw(tool("read_file"), headers=spoof, cert=None), 403, "forbidden_by_policy", before)

    # -- HTTP -------------------------------------------------------------------------------
    def curl(self, *args, cert="reader"):
        cmd = ["curl", "-s", "--cacert", os.path.join(CERTS, "ca.crt"), "-o", "-", "-w", "\n%{http_code} %{http_version}",
               "--cert", os.path.join(CERTS, f"{cert}.crt"), "--key", os.path.join(CERTS, f"{cert}.key"), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
        body, _, status = out.rpartition("\n")
        code, version = status.split()
        return int(code), version, body

    def test_http2_and_http11_are_decided_alike(self):
        url = f"https://localhost:{self.gw.port}/mcp"
        for flag in ("--http2", "--http1.1"):
            before = self.upstream_count()
            code, version, body = self.curl(flag, url, "-H", "content-type: application/json",
                                            "-d", json.dumps(FORBIDDEN))
            self.assertEqual(code, 200, body)
            self.assertEqual(version, "2" if flag == "--http2" else "1.1")
            error = json.loads(body)
            self.assertEqual((error["id"], error["error"]["code"], error["error"]["data"]["reason"]),
                             (9, -32010, "forbidden_by_policy"), body)
            code, _, body = self.curl(flag, url, "-H", "content-type: application/json",
                                      "-d", json.dumps(tool("read_file", {"path": flag})))
            self.assertEqual(code, 200, body)
            self.assertEqual(self.upstream_count(), before + 1)

    def test_paths_are_evaluated_as_forwarded(self):
        for path in ["/weather/v1/../v1/alerts", "/weather/v1/%61lerts", "/weather//v1/alerts", "/weather/v1/./alerts"]:
            before = self.upstream_count()
            r = self.raw(b"level=red", {"content-type": "text/plain"}, path=path)
            self.assertIn(r.status, (301, 307, 308, 403), (path, r.status, r.body[:200]))
            self.assertEqual(self.upstream_count(), before, path)
        before = self.upstream_count()
        ok = self.raw(None, {}, method="GET", path="/weather/v1/../v1/./forecast?city=x")
        self.assertEqual(ok.status, 200, ok.body)
        [seen] = self.gw.upstream_requests()[before:]
        record = self.gw.decision(seen["headers"]["x-toolgate-decision-id"])
        self.assertEqual(record["path"], seen["path"].split("?")[0])

    def test_method_override_headers_are_refused(self):
        for name in ("x-http-method-override", "x-http-method", "x-method-override"):
            before = self.upstream_count()
            self.assert_refused(self.raw(tool("read_file"), {name: "DELETE"}), 400, "method_override", before)


class Batches(unittest.TestCase):
    def test_evaluated_batches_deny_whole_if_any_element_is_denied(self):
        config = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name",
                  "batches": "evaluate"}
        with Gateway(config) as gw:
            mixed = [tool("read_file", id=1), {"jsonrpc": "2.0", "method": "notifications/progress"},
                     tool("delete_database", id=2)]
            r = gw.request("POST", "/mcp", mixed)
            # A policy's no: 200, one JSON-RPC error per id, each the same refusal.
            self.assertEqual(r.status, 200, r.body)
            errors = r.json()
            self.assertEqual([e["id"] for e in errors], [1, 2])
            for e in errors:
                self.assertEqual((e["error"]["code"], e["error"]["data"]["reason"]), (-32010, "forbidden_by_policy"))
                self.assertEqual(e["error"]["data"]["decision_id"], r.header("x-toolgate-decision-id"))
                self.assertNotIn("result", e)
            gw.upstream_barrier()
            self.assertEqual(gw.upstream_requests(), [])
            nested = gw.request("POST", "/mcp", [[tool("read_file")]])
            self.assertEqual(nested.status, 400)
            empty = gw.request("POST", "/mcp", [])
            self.assertEqual(empty.status, 400)
            ok = gw.request("POST", "/mcp", [tool("read_file", id=5), {"jsonrpc": "2.0", "method": "notifications/x"}])
            self.assertEqual(ok.status, 200, ok.body)
            self.assertEqual(len(gw.upstream_requests()), 1)


class TrustedHops(unittest.TestCase):
    def test_xfcc_is_honoured_only_from_configured_hops(self):
        config = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name",
                  "trusted_hops": ["spiffe://toolgate.test/gateway"]}
        xfcc = {"x-forwarded-client-cert": 'By=spiffe://toolgate.test/gateway;Hash="ab,c";'
                                           'URI=spiffe://toolgate.test/agent/payments'}
        refund = tool("refund", {"order_id": "x", "amount": 10})
        with Gateway(config, xfcc_mode="FORWARD_ONLY") as gw:
            # From the trusted hop, XFCC names the principal.
            r = gw.request("POST", "/mcp", refund, xfcc, cert="gateway")
            self.assertEqual(r.status, 200, r.body)
            [seen] = gw.upstream_requests()
            record = gw.decision(seen["headers"]["x-toolgate-decision-id"])
            self.assertEqual(record["principal"], "spiffe://toolgate.test/agent/payments")
            self.assertEqual(record["via"], "spiffe://toolgate.test/gateway")
            # From an ordinary agent, the same header is ignored and not forwarded.
            denied = gw.request("POST", "/mcp", refund, xfcc, cert="reader")
            denied.refusal("not_permitted", id=1)
            record = gw.decision(denied.header("x-toolgate-decision-id"))
            self.assertEqual(record["principal"], "spiffe://toolgate.test/agent/reader")
            self.assertIsNone(record["via"])
            ok = gw.request("POST", "/mcp", tool("read_file", {"path": "xfcc"}), xfcc, cert="reader")
            self.assertEqual(ok.status, 200)
            self.assertNotIn("x-forwarded-client-cert", gw.upstream_requests()[-1]["headers"])
            anonymous = gw.request("POST", "/mcp", refund, xfcc, cert=None)
            anonymous.refusal("forbidden_by_policy", status=403, id=1)
            self.assertIsNone(gw.decision(anonymous.header("x-toolgate-decision-id"))["principal"])
            self.assertEqual(len(gw.upstream_requests()), 2)


class EmptyPolicySet(unittest.TestCase):
    def test_denies_everything_and_says_so(self):
        policies = os.path.join(os.path.dirname(__file__), "../../policies")
        with open(os.path.join(policies, "toolgate.cedarschema")) as f:
            schema = f.read()
        with open(os.path.join(policies, "arguments.cedarschema")) as f:
            arguments = f.read()
        config = {"trust_domains": ["toolgate.test"], "server": "tools",
                  "policies": {"mode": "replace", "schema": schema, "arguments_schema": arguments}}
        with Gateway(config) as gw:
            r = gw.request("POST", "/mcp", tool("read_file"))
            self.assertEqual(r.refusal("not_permitted", id=1)["policies"], [])
            self.assertEqual(gw.upstream_requests(), [])
            self.assertIn("the policy set is empty; every request will be denied", gw.log_text())


if __name__ == "__main__":
    unittest.main()
