"""The e2e harness itself: a start-up that fails, at any step, leaves no process and no port behind;
the refusal checks accept toolgate's answers and nothing else."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import unittest

from harness import Gateway, GatewayTestCase, Response, wait_until


def children():
    """This test process's child processes that are still there (running or unreaped):
    {pid: command line}. Read from /proc, apart from what the harness thinks it started."""
    me, found = str(os.getpid()), {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        # After the command name (in parentheses, which may hold anything): state, then ppid.
        if stat[stat.rindex(")") + 2:].split()[1] == me:
            found[int(pid)] = cmdline
    return found


def listening(port):
    """Whether something listens on 127.0.0.1:PORT (a bind with SO_REUSEADDR fails only then)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


@unittest.skipUnless(os.path.isdir("/proc"), "reads child processes from /proc")
class FailedStartUp(unittest.TestCase):
    def setUp(self):
        self.before = children()

    def assert_nothing_left(self, gw):
        left = {pid: cmd for pid, cmd in children().items() if pid not in self.before}
        self.assertEqual(left, {}, "child processes left after a failed start")
        for name in ("port", "admin_port", "upstream_port"):
            self.assertFalse(listening(getattr(gw, name)), f"something still listens on the gateway's {name}")
        self.assertFalse(os.path.exists(gw.dir), f"{gw.dir} was not removed")

    def assert_stopped_by_the_harness(self, process, what):
        """PROCESS was running until the harness stopped it: proof the start failed with it up,
        not after it had exited itself. SIGTERM kills Python; Envoy, once its handlers are
        installed, exits 0 on it."""
        self.assertIsNotNone(process, f"{what} was never started")
        expected = (0, -signal.SIGTERM) if what == "Envoy" else (-signal.SIGTERM,)
        self.assertIn(process.returncode, expected, f"{what} was not stopped by the harness")

    def test_envoy_exiting_during_start_up_stops_the_upstream(self):
        gw = Gateway()
        with open(gw.envoy_config, "w", encoding="utf-8") as f:
            f.write("static_resources: [not, a, map]\n")  # Envoy refuses it and exits at once
        with self.assertRaisesRegex(RuntimeError, r"envoy exited \(1\)"):
            with gw:
                self.fail("the gateway started with a malformed config")
        self.assert_stopped_by_the_harness(gw.upstream, "the sample upstream")
        self.assert_nothing_left(gw)

    def test_envoy_not_ready_in_time_stops_envoy_and_the_upstream(self):
        gw = Gateway()
        self.addCleanup(gw.stop)
        with self.assertRaisesRegex(RuntimeError, "envoy not ready after 0s"):
            gw.start(ready_timeout=0)
        self.assert_stopped_by_the_harness(gw.envoy, "Envoy")
        self.assert_stopped_by_the_harness(gw.upstream, "the sample upstream")
        gw.stop()
        self.assert_nothing_left(gw)

    def test_an_upstream_that_cannot_start_stops_envoy(self):
        gw = Gateway()
        # Another process holds the upstream's port: the sample server cannot bind it and exits,
        # while connections to the port still succeed (so readiness must look at the process).
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", gw.upstream_port))
            squatter.listen()
            with self.assertRaisesRegex(RuntimeError, r"sample_mcp_server\.py exited \(1\)"):
                with gw:
                    self.fail("the gateway started without its upstream")
        self.assertEqual(gw.upstream.returncode, 1)
        self.assert_stopped_by_the_harness(gw.envoy, "Envoy")
        self.assert_nothing_left(gw)

    def test_an_exception_in_set_up_class_after_the_gateway_started_stops_it(self):
        started = {}

        class BrokenFixture(GatewayTestCase):
            @classmethod
            def setUpClass(cls):
                try:
                    super().setUpClass()
                finally:
                    started["gw"] = cls.gw
                raise RuntimeError("setUpClass failed on purpose")

            def test_never_runs(self):
                started["test ran"] = True

        result = unittest.TestResult()
        unittest.TestSuite([BrokenFixture("test_never_runs")]).run(result)
        [(where, error)] = result.errors
        self.assertTrue(str(where).startswith("setUpClass"), where)
        # On a machine too busy for Envoy to be ready in time, the start itself fails first:
        # an exception in setUpClass after processes started as well.
        self.assertRegex(error, r"RuntimeError: (setUpClass failed on purpose|envoy not ready after)")
        self.assertNotIn("test ran", started)
        self.assertIsNotNone(started.get("gw"), "the gateway was never made, so this proves nothing")
        self.assert_stopped_by_the_harness(started["gw"].envoy, "Envoy")
        self.assert_stopped_by_the_harness(started["gw"].upstream, "the sample upstream")
        self.assert_nothing_left(started["gw"])


class Terminated(unittest.TestCase):
    def test_a_runner_stopped_with_sigterm_stops_what_it_started(self):
        # A runner holding a started process (the risk feed: cheap, no Envoy), then SIGTERM.
        runner = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent("""
                import sys, time
                sys.path.insert(0, sys.argv[1])
                from harness import Gateway
                gw = Gateway(risk_feed=True)
                try:
                    gw.start_risk()
                    print(gw.risk_feed.pid, gw.dir, flush=True)
                    time.sleep(60)
                finally:
                    gw.stop()
                """),
             os.path.dirname(os.path.abspath(__file__))],
            stdout=subprocess.PIPE, text=True)
        try:
            pid, directory = runner.stdout.readline().split()
            runner.send_signal(signal.SIGTERM)
            self.assertEqual(runner.wait(timeout=20), 128 + signal.SIGTERM)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
            runner.stdout.close()
        with self.assertRaises(ProcessLookupError, msg="the risk feed outlived its runner"):
            os.kill(int(pid), 0)
        self.assertFalse(os.path.exists(directory), f"{directory} was not removed")


class WaitUntil(unittest.TestCase):
    def test_returns_the_first_truthy_value_as_soon_as_it_comes(self):
        calls = []

        def third_time():
            calls.append(1)
            return len(calls) >= 3 and "ready"
        started = time.monotonic()
        self.assertEqual(wait_until(third_time, timeout=5, interval=0.01), "ready")
        self.assertEqual(len(calls), 3)
        self.assertLess(time.monotonic() - started, 1)

    def test_fails_after_the_timeout_naming_what_it_waited_for(self):
        started = time.monotonic()
        with self.assertRaisesRegex(AssertionError, r"timed out after 0.2 s waiting for the moon"):
            wait_until(lambda: None, timeout=0.2, what="the moon", interval=0.01)
        self.assertGreaterEqual(time.monotonic() - started, 0.2)


DECISION = "18f4ef69537f7d580000000000000058"


def answer(body, status=200, decision_id=DECISION):
    headers = {"content-type": "application/json"}
    if decision_id:
        headers["x-toolgate-decision-id"] = decision_id
    return Response(status, headers, json.dumps(body).encode())


def rpc_error(reason="forbidden_by_policy", code=-32010, id=7, policies=("forbid-critical-tools",)):
    return {"jsonrpc": "2.0", "id": id, "error": {
        "code": code, "message": "toolgate: the call is forbidden by policy",
        "data": {"decision_id": DECISION, "reason": reason, "policies": list(policies)}}}


class Refusals(unittest.TestCase):
    """Response.refusal() and tool_refusal(), on answers as toolgate writes them (enforce.rs)."""

    def test_a_policy_refusal_is_200_with_the_json_rpc_error(self):
        data = answer(rpc_error()).refusal("forbidden_by_policy", id=7)
        self.assertEqual(data["policies"], ["forbid-critical-tools"])
        self.assertTrue(answer(rpc_error()).refused())
        with self.assertRaisesRegex(AssertionError, "HTTP status 200, expected 403"):
            answer(rpc_error()).refusal("forbidden_by_policy", status=403)
        with self.assertRaisesRegex(AssertionError, "reason 'forbidden_by_policy'"):
            answer(rpc_error()).refusal("not_permitted")
        with self.assertRaisesRegex(AssertionError, "id 7, expected 8"):
            answer(rpc_error()).refusal(id=8)
        with self.assertRaisesRegex(AssertionError, "code -32001, expected -32010"):
            answer(rpc_error(code=-32001)).refusal()
        with self.assertRaisesRegex(AssertionError, "not the x-toolgate-decision-id header"):
            answer(rpc_error(), decision_id=None).refusal()

    def test_other_refusals_keep_their_status_and_code(self):
        untrusted = answer(rpc_error("untrusted_trust_domain", -32011, policies=()), status=403)
        self.assertEqual(untrusted.refusal("untrusted_trust_domain", status=403, code=-32011)["policies"], [])
        with self.assertRaisesRegex(AssertionError, "code -32011, expected -32600"):
            untrusted.refusal(status=403, code=-32600)

    def test_what_is_not_a_refusal(self):
        result = answer({"jsonrpc": "2.0", "id": 7, "result": {"content": []}})
        self.assertFalse(result.refused())
        self.assertIsNone(result.rpc_error())
        with self.assertRaisesRegex(AssertionError, "not a JSON-RPC 2.0 error object"):
            result.refusal()
        problem = Response(403, {"content-type": "application/problem+json"}, b'{"reason": "not_permitted"}')
        self.assertTrue(problem.refused())
        with self.assertRaisesRegex(AssertionError, "content-type"):
            problem.refusal(status=403)
        with self.assertRaisesRegex(AssertionError, "not toolgate's tool-result refusal"):
            answer(rpc_error()).tool_refusal()

    def test_a_tool_result_with_is_error(self):
        data = {"decision_id": DECISION, "reason": "forbidden_by_policy", "policies": ["forbid-critical-tools"]}
        text = (f"toolgate refused this call: the call is forbidden by policy (reason forbidden_by_policy, "
                f"decision {DECISION}, policies forbid-critical-tools).")
        body = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": text}],
                                                      "isError": True, "_meta": {"toolgate": data}}}
        self.assertEqual(answer(body).tool_refusal("forbidden_by_policy", id=7), data)
        self.assertTrue(answer(body).refused())
        self.assertIsNone(answer(body).rpc_error())
        upstream_error = {"jsonrpc": "2.0", "id": 7, "result": {"content": [], "isError": True}}
        self.assertFalse(answer(upstream_error).refused(), "an upstream's own isError is no refusal")


if __name__ == "__main__":
    unittest.main()
