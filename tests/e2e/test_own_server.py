"""End-to-end: a new user's own MCP server, its `toolgate schema-from-mcp` output and their
policies start a real Envoy in both policy modes, with nothing of the demo's in the way."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT, Gateway

CLI = os.environ.get("TOOLGATE_CLI", os.path.join(ROOT, "target/debug/toolgate"))

# What the user's server answers to tools/list. `amount` is a JSON Schema number (zod's
# z.number(), Python's float); `limit` is text here, while the demo's search_docs declares
# an integer `limit`: each tool's own type holds.
TOOLS = {"tools": [
    {"name": "charge", "inputSchema": {"type": "object", "properties": {
        "amount": {"type": "number"}, "customer": {"type": "string"}, "limit": {"type": "string"}}}},
    # `"format": "path"` makes `path` a Toolgate::Path (pydantic writes it for pathlib.Path).
    {"name": "read_doc", "inputSchema": {"type": "object", "properties": {
        "path": {"type": "string", "format": "path"}}}},
]}

POLICIES = '''@id("billing-sessions")
permit (principal is Toolgate::Agent, action in [Toolgate::Action::"session", Toolgate::Action::"discovery"], resource);

@id("small-charges")
permit (principal is Toolgate::Agent, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"billing/charge")
when {
  context has arguments.billing.charge.amount &&
  context.arguments.billing.charge.amount.lessThanOrEqual(decimal("100.0"))
};

// A server-wide rule: it covers tools the catalog does not list, too.
@id("no-bulk-operations")
forbid (principal, action == Toolgate::Action::"tools/call", resource in Toolgate::Server::"billing")
when { context has name && context.name like "*_all" };

@id("docs-only")
permit (principal is Toolgate::Agent, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"billing/read_doc")
when { context has arguments.billing.read_doc.path && context.arguments.billing.read_doc.path like "/docs/*" };

@id("anything-else-on-billing")
permit (principal is Toolgate::Agent, action == Toolgate::Action::"tools/call", resource in Toolgate::Server::"billing")
unless { resource == Toolgate::Tool::"billing/charge" || resource == Toolgate::Tool::"billing/read_doc" };
'''


class OwnServerSchemaAndPolicies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CLI):
            raise AssertionError(f"{CLI} is missing: build it with `cargo build -p toolgate-cli`")
        cls.scratch = tempfile.mkdtemp(prefix="toolgate-own-")
        tools = os.path.join(cls.scratch, "billing.json")
        catalog = os.path.join(cls.scratch, "catalog.json")
        with open(tools, "w", encoding="utf-8") as f:
            json.dump(TOOLS, f)
        done = subprocess.run([CLI, "schema-from-mcp", "--entities", catalog, tools],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        cls.arguments = done.stdout
        with open(catalog, encoding="utf-8") as f:
            cls.entities = json.load(f)
        with open(os.path.join(ROOT, "policies/toolgate.cedarschema"), encoding="utf-8") as f:
            cls.model = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def config(self, mode):
        policies = {"mode": mode, "cedar": POLICIES, "arguments_schema": self.arguments, "entities": self.entities}
        if mode == "replace":
            policies["schema"] = self.model
        return {"trust_domains": ["toolgate.test"], "server": "billing", "policies": policies}

    def check_decisions(self, gw):
        small = gw.call_tool("charge", {"amount": 12.5, "customer": "acme", "limit": "10"}, id=1)
        self.assertEqual(small.status, 200, small.body)
        big = gw.call_tool("charge", {"amount": 250, "customer": "acme"}, id=2)
        big.refusal("not_permitted", id=2)
        # A number that does not fit a Cedar decimal is refused, never passed on untyped.
        unfit = gw.call_tool("charge", {"amount": 0.12345}, id=3)
        self.assertEqual(unfit.status, 400, unfit.body)
        data = unfit.json()["error"]["data"]
        self.assertEqual(data["reason"], "invalid_arguments")
        record = gw.decision(unfit.header("x-toolgate-decision-id"))
        self.assertIn("argument `amount` must be a number with at most 4 decimal places", record["errors"][0])
        # Uncatalogued tools are children of their server: the server-wide forbid holds.
        bulk = gw.call_tool("refund_all", {}, id=4)
        self.assertEqual(bulk.refusal("forbidden_by_policy", id=4)["policies"], ["no-bulk-operations"])
        other = gw.call_tool("refund_one", {}, id=5)
        self.assertEqual(other.status, 200, other.body)
        self.check_paths(gw)

    def check_paths(self, gw):
        """`like "/docs/*"` on a Path cannot be walked out of; the upstream never sees the attempt."""
        doc = gw.call_tool("read_doc", {"path": "/docs/readme.md"}, id=10)
        self.assertEqual(doc.status, 200, doc.body)
        for path, problem in [("/docs/../etc/passwd", "has a `..` segment"),
                              ("/docs/%2e%2e/etc/passwd", "has `%2e`, a percent-encoded `.`")]:
            walk = gw.call_tool("read_doc", {"path": path}, id=11)
            self.assertEqual(walk.status, 400, walk.body)
            error = walk.json()["error"]
            self.assertEqual(error["code"], -32602)
            self.assertEqual(error["data"]["reason"], "unsafe_path")
            record = gw.decision(walk.header("x-toolgate-decision-id"))
            self.assertEqual(record["reason"], "unsafe_path")
            self.assertEqual(record["errors"], [f"argument `path` is not a safe path: it {problem}"])
        outside = gw.call_tool("read_doc", {"path": "/etc/passwd"}, id=12)
        outside.refusal("not_permitted", id=12)
        # A later allowed call has reached the upstream once its answer is back: the refused ones never did.
        after = gw.call_tool("read_doc", {"path": "/docs/after.md"}, id=13)
        self.assertEqual(after.status, 200, after.body)
        bodies = [u["body"] for u in gw.upstream_requests()]
        self.assertTrue(any("/docs/after.md" in b for b in bodies), bodies)
        self.assertFalse([b for b in bodies if "passwd" in b], "a refused path reached the upstream")

    def test_extend_mode_starts_and_decides(self):
        with Gateway(self.config("extend")) as gw:
            self.check_decisions(gw)
            # The embedded guardrails are there too.
            # (a caller without identity keeps the 403)
            anonymous = gw.call_tool("charge", {"amount": 1}, id=6, cert=None)
            self.assertEqual(anonymous.refusal("forbidden_by_policy", status=403, id=6)["policies"],
                             ["forbid-unauthenticated"])

    def test_replace_mode_starts_and_decides(self):
        with Gateway(self.config("replace")) as gw:
            self.check_decisions(gw)


if __name__ == "__main__":
    unittest.main()
