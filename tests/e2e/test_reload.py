"""End-to-end: live policy reload through Envoy's ECDS while traffic flows, through real Envoy."""
import http.client
import json
import os
import re
import shutil
import tempfile
import threading
import time
import unittest

from harness import ROOT, Gateway

BASE = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name"}
ECDS = "envoy_extension_config_discovery_http_filter_toolgate_"
VMS_CREATED = "envoy_wasm_envoy_wasm_runtime_v8_created"

# v1 is the demo folder (examples/demo/) as shipped; v2 lets readers write files; v3 also forbids them searching docs.
READERS_WRITE = '''@id("readers-may-write-files")
permit (principal in Toolgate::AgentGroup::"readers", action == Toolgate::Action::"tools/call",
        resource == Toolgate::Tool::"tools/write_file");
'''
NO_SEARCH = '''@id("readers-may-not-search")
forbid (principal in Toolgate::AgentGroup::"readers", action == Toolgate::Action::"tools/call",
        resource == Toolgate::Tool::"tools/search_docs");
'''
SYNTAX_ERROR = '''@id("broken")
permit (principal, action == , resource);
'''
SCHEMA_VIOLATION = '''@id("typo")
permit (principal, action == Toolgate::Action::"tools/call", resource)
when { context.intnet == "write" };
'''
# What the reader gets for each tool under each version: forwarded (200), or a policy's no
# (200 with the JSON-RPC error naming the reason).
ALLOWED = (200, None)
EXPECTED = {
    "read_file": {"v1": ALLOWED, "v2": ALLOWED, "v3": ALLOWED},
    "write_file": {"v1": (200, "not_permitted"), "v2": ALLOWED, "v3": ALLOWED},
    "search_docs": {"v1": ALLOWED, "v2": ALLOWED, "v3": (200, "forbidden_by_policy")},
}
CLIENTS = 3
PER_PHASE = 100  # responses each phase must see before the next update


class Traffic:
    """Client threads sending tools/call requests back to back over mTLS."""

    def __init__(self, gw):
        self.gw, self.stop, self.lock = gw, threading.Event(), threading.Lock()
        self.results = []  # (client, seq, tool, (status, refusal reason or None) or error text)
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(CLIENTS)]

    def run(self, client):
        # Client 0 keeps one connection open across the updates; the others open a new
        # connection per request, so that their requests spread over both workers.
        keep_alive = client == 0
        tools, seq, context, conn = list(EXPECTED), 0, self.gw.ssl_context("reader"), None
        while not self.stop.is_set():
            tool = tools[seq % len(tools)]
            body = json.dumps({"jsonrpc": "2.0", "id": seq, "method": "tools/call",
                               "params": {"name": tool, "arguments": {}}})
            conn = conn or http.client.HTTPSConnection("localhost", self.gw.port, context=context, timeout=10)
            try:
                conn.request("POST", "/mcp", body, {"content-type": "application/json",
                                                    "x-request-id": f"reload-{client}-{seq}"})
                response = conn.getresponse()
                outcome = (response.status, refusal_reason(response.read()))
            except Exception as e:  # a reset or refused connection is a failure here
                outcome = f"{type(e).__name__}: {e}"
            if not keep_alive or not isinstance(outcome, tuple):
                conn.close()
                conn = None
            with self.lock:
                self.results.append((client, seq, tool, outcome))
            seq += 1
        if conn:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.results)

    def wait_for_more(self, n, timeout=60):
        target, deadline = self.count() + n, time.time() + timeout
        while self.count() < target:
            if time.time() > deadline:
                raise AssertionError(f"traffic stalled at {self.count()} responses")
            time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def refusal_reason(body):
    """The reason of toolgate's JSON-RPC refusal in BODY, or None (a result)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return (error.get("data") or {}).get("reason") if isinstance(error, dict) else None


def folder(base, name, **extra_files):
    """A copy of the demo folder (examples/demo/) plus extra .cedar files."""
    path = os.path.join(base, name)
    shutil.copytree(os.path.join(ROOT, "examples/demo"), path)
    for file_name, text in extra_files.items():
        with open(os.path.join(path, file_name + ".cedar"), "w", encoding="utf-8") as f:
            f.write(text)
    return path


class LiveReload(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="toolgate-reload-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def wait(self, what, check, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = check()
            except OSError:  # the admin interface waits while Envoy's main thread loads a VM
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def new_version(self, gw, known):
        """Waits for a decision carrying a policy version not in known; returns it."""
        def check():
            versions = {r["policy_version"] for r in gw.decisions()} - known
            self.assertLessEqual(len(versions), 1, f"more than one new version at once: {versions}")
            return versions.pop() if versions else None
        return self.wait("a decision with the new policy version", check)

    def test_policies_switch_under_load_and_bad_updates_are_rejected(self):
        v1 = folder(self.tmp, "v1")
        v2 = folder(self.tmp, "v2", readers_write=READERS_WRITE)
        bad_syntax = folder(self.tmp, "bad-syntax", readers_write=READERS_WRITE, broken=SYNTAX_ERROR)
        bad_schema = folder(self.tmp, "bad-schema", readers_write=READERS_WRITE, typo=SCHEMA_VIOLATION)
        v3 = folder(self.tmp, "v3", readers_write=READERS_WRITE, no_search=NO_SEARCH)

        with Gateway(BASE, workers=2, ecds=v1) as gw:
            with Traffic(gw) as traffic:
                stats = gw.stats()
                created_at_start = stats[VMS_CREATED]
                self.assertEqual(stats[ECDS + "update_success"], 1)
                traffic.wait_for_more(PER_PHASE)
                versions = {"v1": self.new_version(gw, set())}

                # Good update: every worker moves to v2.
                started = time.time()
                gw.publish(v2)
                self.wait("Envoy to accept the update", lambda: gw.stats().get(ECDS + "update_success") == 2)
                accepted_seconds = time.time() - started
                versions["v2"] = self.new_version(gw, set(versions.values()))
                switch_seconds = time.time() - started
                traffic.wait_for_more(PER_PHASE)

                # Bad updates: rejected, counted, logged with the reason; v2 keeps serving.
                for n, bad in enumerate([bad_syntax, bad_schema], start=1):
                    gw.publish(bad)
                    self.wait("Envoy to reject the update",
                              lambda: gw.stats().get(ECDS + "update_rejected") == n)
                    traffic.wait_for_more(PER_PHASE)
                stats = gw.stats()
                self.assertEqual(stats[ECDS + "config_fail"], 2)
                self.assertEqual(stats[ECDS + "update_success"], 2)
                # One per refused configuration: Envoy checks each distinct one once.
                self.assertEqual(stats["toolgate_config_rejected"], 2)

                gw.publish(v3)
                versions["v3"] = self.new_version(gw, set(versions.values()))
                traffic.wait_for_more(PER_PHASE)
                stats = gw.stats()
                self.assertEqual(stats[ECDS + "update_success"], 3)
                # The loaded VMs were reused: each update only adds Envoy's short-lived
                # configuration-check clone, never a fresh VM per worker.
                vms_created = stats[VMS_CREATED] - created_at_start
                self.assertLessEqual(vms_created, 4)
            log = gw.log_text()
            records = self.wait("every decision in the log", lambda: self.all_logged(gw, traffic.results))

        # Every request got an answer, and it is the answer of the version that decided it.
        failures = [r for r in traffic.results if not isinstance(r[3], tuple)]
        self.assertEqual(failures, [], f"{len(failures)} of {len(traffic.results)} requests failed")
        label = {version: name for name, version in versions.items()}
        self.assertEqual(len(label), 3, f"the three versions must differ: {versions}")
        seeds = {name: set() for name in versions}
        for client in range(CLIENTS):
            seen = []
            for _, seq, tool, outcome in sorted(r for r in traffic.results if r[0] == client):
                record = records[f"reload-{client}-{seq}"]
                name = label.get(record["policy_version"])
                self.assertIsNotNone(name, f"unknown policy version in {record}")
                self.assertEqual(outcome, EXPECTED[tool][name], f"{tool} under {name}: {record}")
                seen.append(name)
                seeds[name].add(record["decision_id"][:16])
            # No going back: v1, then v2, then v3, each seen.
            self.assertEqual(seen, sorted(seen), f"client {client} saw versions out of order")
            self.assertEqual(set(seen), {"v1", "v2", "v3"})
        for name, roots in seeds.items():
            self.assertGreaterEqual(len(roots), 2, f"{name} was not served by both workers")

        refusals = [line for line in log.splitlines() if "toolgate: configuration refused" in line]
        self.assertEqual(len(refusals), 2, refusals)
        self.assertRegex(refusals[0], r"`policies\.cedar`:\d+:\d+ \(broken\.cedar:2:\d+\): unexpected token")
        self.assertRegex(refusals[1], r"\(typo\.cedar:3:\d+\).*did you mean `intent`\?")
        self.assertIn("Filesystem config update rejected", log)
        print(f"\n  {len(traffic.results)} requests, 0 failed; v2 accepted {accepted_seconds * 1000:.0f} ms and seen "
              f"in the decision log {switch_seconds * 1000:.0f} ms after publishing; {vms_created:.0f} VMs created "
              f"for 4 updates; policy versions {versions}")

    @staticmethod
    def all_logged(gw, results):
        by_request = {r["request_id"]: r for r in gw.decisions()}
        wanted = [f"reload-{client}-{seq}" for client, seq, _, _ in results]
        return by_request if all(w in by_request for w in wanted) else None

    def test_a_gateway_whose_first_config_is_bad_refuses_everything_until_a_good_one_arrives(self):
        bad = folder(self.tmp, "bad", broken=SYNTAX_ERROR)
        with Gateway(BASE, ecds=bad) as gw:
            self.assertEqual(gw.stats()[ECDS + "config_fail"], 1)
            r = gw.call_tool("read_file", {"path": "x"})
            self.assertEqual(r.status, 500, r.body)
            self.assertEqual(gw.upstream_requests(), [], "nothing may pass without a filter config")
            # Nothing kept the VM of the refused config: this one loads it afresh (seconds).
            gw.publish(folder(self.tmp, "good"))
            self.wait("the first good config", lambda: gw.stats().get(ECDS + "update_success") == 1, timeout=60)
            allowed = gw.call_tool("read_file", {"path": "x"})
            self.assertEqual((allowed.status, allowed.refused()), (200, False), allowed.body)
            gw.call_tool("delete_database").refusal("forbidden_by_policy")
            self.assertTrue(re.search(r"configuration refused: .*broken\.cedar", gw.log_text()))


if __name__ == "__main__":
    unittest.main()
