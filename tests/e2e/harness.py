"""Runs a real Envoy with the built toolgate.wasm in front of the sample MCP server, over real mTLS."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENVOY = os.environ.get("TOOLGATE_ENVOY", os.path.join(ROOT, ".venv/bin/envoy"))
WASM = os.environ.get("TOOLGATE_WASM", os.path.join(ROOT, "target/wasm32-wasip1/release/toolgate.wasm"))
CERTS = os.environ.get("TOOLGATE_CERTS", os.path.join(ROOT, ".work/certs"))
JWT_KEYS = os.environ.get("TOOLGATE_JWT_KEYS", os.path.join(ROOT, ".work/jwt"))
# A build with the test-crash feature: a request with x-toolgate-test-crash traps the VM.
CRASH_WASM = os.environ.get("TOOLGATE_CRASH_WASM",
                            os.path.join(ROOT, "target/test-crash/wasm32-wasip1/release/toolgate.wasm"))
TEMPLATE = os.path.join(ROOT, "envoy/envoy.yaml")
DEFAULT_CONFIG = os.path.join(ROOT, "envoy/toolgate.json")
ECDS = os.path.join(ROOT, "scripts/lib/ecds.py")
RISK_FEED = os.path.join(ROOT, "scripts/lib/risk_feed.py")
ECDS_RESOURCE = "toolgate.ecds.json"
# The demo's policies, catalog and argument types: configuration, not embedded in the filter.
DEMO = os.path.join(ROOT, "examples/demo")
sys.path.insert(0, os.path.join(ROOT, "scripts/lib"))
import ecds as ecds_lib  # noqa: E402


def with_demo_policies(plugin_config):
    """The plugin configuration (JSON text) with the demo folder as its `policies`, as
    scripts/demo publishes it, when it gives none; text that is not a JSON object stays as is."""
    try:
        config = json.loads(plugin_config)
    except ValueError:
        return plugin_config
    if not isinstance(config, dict) or "policies" in config:
        return plugin_config
    config["policies"] = ecds_lib.read_policies(DEMO, config)
    return json.dumps(config, indent=2)


def args_digest(arguments):
    """toolgate's `sha256:` digest of a call's arguments (its canonical JSON: sorted keys,
    no whitespace), for the plain ASCII strings and integers the tests send; other values
    (floats, non-ASCII text) are written differently by Python's json."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=5, what="the condition", interval=0.05):
    """Polls CONDITION until it returns something truthy and returns that, or fails after
    TIMEOUT seconds saying WHAT it waited for. The wait for an observable state, instead of
    a fixed sleep: as fast as the state arrives, and a clear failure when it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# Requests the harness sends for itself (Gateway.upstream_barrier) carry this in their
# x-request-id and query string; upstream_requests() and decisions() leave them out.
MARKER = "e2e-marker-"


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


# A runner stopped with SIGTERM (a CI timeout, kill PID) would otherwise die on the spot,
# skipping every cleanup: as SystemExit, the Gateways' with-blocks and class cleanups stop
# Envoy and the upstreams. Only when nobody else has claimed the signal.
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


# toolgate's own JSON-RPC error codes (filter/src/reason.rs, docs/decision-log.md): a
# policy's no, and a request that could not be let through (the caller's identity, an
# internal error, some protocol refusals).
POLICY_REFUSAL = -32010
NOT_LET_THROUGH = -32011
# The reasons of class `policy`. A policy's no to a JSON-RPC request with an id from a
# caller with an identity is HTTP 200 with the JSON-RPC error (the default
# refusals.policy_status "ok"); every other refusal (the caller's identity, the transport,
# a caller without identity, a message without an id, a REST call) keeps the reason's status.
POLICY_REASONS = frozenset({"forbidden_by_policy", "not_permitted", "rate_limited",
                            "delegated_actor_not_permitted", "approval_required"})
_ANY = object()


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def describe(self):
        return f"HTTP {self.status} {self.body[:400]!r}"

    def rpc_error(self):
        """The `error` member of a single JSON-RPC answer; None for anything else (a result,
        a batch's array, a problem document, a body that is not JSON)."""
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("error") if isinstance(body, dict) else None

    def refused(self):
        """True when toolgate refused this request, however it answered: a JSON-RPC error
        (on any status), a tool result with isError, a problem document, or an error status.
        An allowed call is answered by the upstream: 2xx with its result."""
        if self.status >= 400 or self.rpc_error() is not None:
            return True
        try:
            body = self.json()
        except ValueError:
            return False
        return isinstance(body, dict) and isinstance(body.get("result"), dict) \
            and body["result"].get("isError") is True and "toolgate" in body["result"].get("_meta", {})

    def refusal(self, reason=None, status=200, code=None, id=_ANY):
        """Asserts this is toolgate's JSON-RPC refusal and returns its error's `data`.

        STATUS: 200 by default, a policy's no (POLICY_REASONS) to an authenticated caller's
        request; the reason's own status (403, 401, 429...) for the others or with
        refusals.policy_status "reason". Checked too: a JSON content type, a JSON-RPC 2.0
        error object (no result), the reason when REASON is given, the code (CODE, or -32010
        for a policy's reason), the request ID when given, and that `data.decision_id` is the
        x-toolgate-decision-id header."""
        def fail(what):
            raise AssertionError(f"not toolgate's JSON-RPC refusal{f' ({reason})' if reason else ''}: "
                                 f"{what}; got {self.describe()}")
        if self.status != status:
            fail(f"HTTP status {self.status}, expected {status}")
        if (self.header("content-type") or "").split(";")[0].strip() != "application/json":
            fail(f"content-type {self.header('content-type')!r}")
        try:
            body = self.json()
        except ValueError:
            fail("the body is not JSON")
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0" or "result" in body \
                or not isinstance(body.get("error"), dict):
            fail("not a JSON-RPC 2.0 error object")
        if id is not _ANY and body.get("id") != id:
            fail(f"id {body.get('id')!r}, expected {id!r}")
        error = body["error"]
        data = error.get("data")
        if not isinstance(data, dict):
            fail("error.data is not an object")
        if reason is not None and data.get("reason") != reason:
            fail(f"reason {data.get('reason')!r}")
        if code is None and data.get("reason") in POLICY_REASONS:
            code = POLICY_REFUSAL
        if code is not None and error.get("code") != code:
            fail(f"code {error.get('code')}, expected {code}")
        if not isinstance(error.get("message"), str) or not error["message"].startswith("toolgate: "):
            fail("error.message is not toolgate's")
        if not data.get("decision_id") or data["decision_id"] != self.header("x-toolgate-decision-id"):
            fail(f"data.decision_id {data.get('decision_id')!r} is not the x-toolgate-decision-id header "
                 f"{self.header('x-toolgate-decision-id')!r}")
        if not isinstance(data.get("policies"), list):
            fail("data.policies is not a list")
        return data

    def tool_refusal(self, reason=None, id=_ANY):
        """Asserts this is a tools/call refused as a tool result (refusals.tools_call
        "result": HTTP 200, a result with isError and toolgate's readable text) and returns
        its `_meta.toolgate`, the data a JSON-RPC refusal would carry."""
        def fail(what):
            raise AssertionError(f"not toolgate's tool-result refusal: {what}; got {self.describe()}")
        if self.status != 200:
            fail(f"HTTP status {self.status}")
        try:
            body = self.json()
        except ValueError:
            fail("the body is not JSON")
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0" or "error" in body \
                or not isinstance(body.get("result"), dict):
            fail("not a JSON-RPC 2.0 result")
        if id is not _ANY and body.get("id") != id:
            fail(f"id {body.get('id')!r}, expected {id!r}")
        result = body["result"]
        if result.get("isError") is not True:
            fail("isError is not true")
        content = result.get("content")
        if not (isinstance(content, list) and content and content[0].get("type") == "text"
                and content[0].get("text", "").startswith("toolgate refused this call: ")):
            fail("the content is not toolgate's text")
        data = result.get("_meta", {}).get("toolgate")
        if not isinstance(data, dict):
            fail("no _meta.toolgate")
        if reason is not None and data.get("reason") != reason:
            fail(f"reason {data.get('reason')!r}")
        if f"(reason {data.get('reason')}, decision {data.get('decision_id')}" not in content[0]["text"]:
            fail("the text does not name the reason and the decision")
        if not data.get("decision_id") or data["decision_id"] != self.header("x-toolgate-decision-id"):
            fail("_meta.toolgate.decision_id is not the x-toolgate-decision-id header")
        return data


class Gateway:
    """One Envoy + sample upstream. Use as a context manager; everything stops on exit."""

    def __init__(self, plugin_config=None, failure_policy="FAIL_RELOAD", wasm=None, xfcc_mode="SANITIZE",
                 workers=1, ecds=None, risk_feed=None, envoy_args=(), upstream=None, upstream_env=None):
        """ecds: deliver the filter's config through ECDS (a watched directory) instead of
        inline: True keeps plugin_config's own policies, a policy folder replaces them
        (scripts/lib/ecds.py); publish() then updates the policies of the running gateway.
        risk_feed: True, or the initial feed as a dict, runs scripts/lib/risk_feed.py behind
        Envoy's risk_feed cluster; set_risk(), fail_risk(), stop_risk() and start_risk()
        then change what toolgate's polls get. envoy_args: more Envoy command-line arguments.
        upstream: the argv of a server to run behind Envoy instead of the sample server (then
        upstream_requests() sees nothing), with upstream_env added to its environment; in both,
        "{upstream_port}" becomes the port Envoy sends to and "{gateway_port}" the agents' port.
        Its output goes to upstream_log_text()."""
        self.workers = workers
        self.upstream_argv, self.upstream_env = upstream, upstream_env
        self.envoy_args = list(envoy_args)
        self.processes = []
        self.envoy = self.upstream = None
        self.dir = tempfile.mkdtemp(prefix="toolgate-e2e-")
        self.envoy_log = os.path.join(self.dir, "envoy.log")
        self.upstream_log = os.path.join(self.dir, "upstream.log")
        try:
            self._prepare(plugin_config, failure_policy, wasm, xfcc_mode, ecds, risk_feed)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _prepare(self, plugin_config, failure_policy, wasm, xfcc_mode, ecds, risk_feed):
        """Writes the configs into self.dir: the plugin's, ECDS's and Envoy's."""
        self.admin_port, self.port, self.upstream_port = free_port(), free_port(), free_port()
        self.risk_feed = None
        self.risk_feed_port = None
        if risk_feed:
            self.risk_feed_port = free_port()
            self.risk_feed_file = os.path.join(self.dir, "risk.json")
            with open(self.risk_feed_file, "w", encoding="utf-8") as f:
                json.dump(risk_feed if isinstance(risk_feed, dict) else {"agents": {}}, f)
        self.log_path = os.path.join(self.dir, "decisions.log")
        self.record_path = os.path.join(self.dir, "upstream.jsonl")
        config_path = os.path.join(self.dir, "toolgate.json")
        if plugin_config is None:
            with open(DEFAULT_CONFIG, encoding="utf-8") as f:
                plugin_config = f.read()
        with open(config_path, "w", encoding="utf-8") as f:
            text = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config, indent=2)
            f.write(with_demo_policies(text))
        self.envoy_config = os.path.join(self.dir, "envoy.yaml")
        ecds_values = []
        self.ecds_resource = None
        if ecds:
            ecds_dir = os.path.join(self.dir, "ecds")
            os.mkdir(ecds_dir)
            self.ecds_resource = os.path.join(ecds_dir, ECDS_RESOURCE)
            ecds_values = [f"ECDS_DIR={ecds_dir}"]
            self._ecds([self.ecds_resource, "--wasm", wasm or WASM, "--config", config_path,
                        "--failure-policy", failure_policy] + (["--policies", ecds] if isinstance(ecds, str) else []))
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts/lib/render.py"), TEMPLATE, self.envoy_config,
             f"ADMIN_PORT={self.admin_port}", f"LISTEN_PORT={self.port}", f"UPSTREAM_PORT={self.upstream_port}",
             f"CERTS={CERTS}", f"DECISION_LOG={self.log_path}", f"WASM={wasm or WASM}",
             f"PLUGIN_CONFIG={config_path}", f"FAILURE_POLICY={failure_policy}", f"XFCC_MODE={xfcc_mode}",
             f"JWT_KEYS={JWT_KEYS}"] + ecds_values
            + ([f"RISK_FEED_PORT={self.risk_feed_port}"] if self.risk_feed_port else []),
            check=True)

    def __enter__(self):
        # __exit__ does not run when __enter__ raises: a failed start stops what it started here.
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, wait_ready=True, ready_timeout=60):
        """Starts the risk feed (if any), the sample upstream and Envoy, and waits until all
        serve. When any of it fails, every process started so far is stopped before the
        error is raised, so a failed start never leaves a process or a port behind.
        READY_TIMEOUT: V8 compiling the module took 26 s on a busy 2-core machine."""
        try:
            if self.risk_feed_port and self.risk_feed is None:
                self.start_risk()
            if self.upstream_argv is None:
                self.upstream = self._spawn(
                    [sys.executable, os.path.join(ROOT, "scripts/lib/sample_mcp_server.py"),
                     "--port", str(self.upstream_port), "--record", self.record_path])
            else:
                env = dict(os.environ, **{k: self._fill(v) for k, v in (self.upstream_env or {}).items()})
                with open(self.upstream_log, "w") as log:
                    self.upstream = self._spawn([self._fill(a) for a in self.upstream_argv], env=env,
                                                stdout=log, stderr=subprocess.STDOUT)
            with open(self.envoy_log, "w") as log:
                self.envoy = self._spawn(
                    [ENVOY, "-c", self.envoy_config, "--use-dynamic-base-id", "--concurrency", str(self.workers),
                     "--file-flush-interval-msec", "100", "-l", "info",
                     # No hot-restart shared memory: it would outlive every test's Envoy.
                     "--disable-hot-restart"] + self.envoy_args,
                    stdout=log, stderr=subprocess.STDOUT)
            if wait_ready:
                self.wait_ready(ready_timeout)
        except BaseException:
            self._stop_processes()
            raise

    def _fill(self, text):
        return text.replace("{upstream_port}", str(self.upstream_port)).replace("{gateway_port}", str(self.port))

    def _spawn(self, argv, **kwargs):
        """Starts a child process and registers it for _stop_processes in the same step."""
        process = subprocess.Popen(argv, **kwargs)
        self.processes.append(process)
        return process

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.envoy.poll() is not None:
                raise RuntimeError(f"envoy exited ({self.envoy.returncode}):\n{self.log_text()[-3000:]}")
            if self.upstream.poll() is not None:
                # Checked apart from the port: another process may hold it.
                name = "sample_mcp_server.py" if self.upstream_argv is None else " ".join(self.upstream_argv)
                raise RuntimeError(f"{name} exited ({self.upstream.returncode}) on port "
                                   f"{self.upstream_port}:\n{self.upstream_log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200 and self._upstream_up():
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{self.log_text()[-3000:]}")

    def _upstream_up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        self._stop_processes()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_processes(self):
        for p in reversed(self.processes):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.processes = []
        self.risk_feed = None

    # -- the risk feed (Gateway(risk_feed=...)) ------------------------------------
    def start_risk(self, feed=None, timeout=10):
        """Starts the risk feed server (again), serving FEED or, by default, the initial feed."""
        assert self.risk_feed_port, "start_risk() needs Gateway(risk_feed=...)"
        assert self.risk_feed is None or self.risk_feed.poll() is not None, "the risk feed is running"
        if feed is not None:
            with open(self.risk_feed_file, "w", encoding="utf-8") as f:
                json.dump(feed, f)
        self.risk_feed = self._spawn([sys.executable, RISK_FEED, "--port", str(self.risk_feed_port),
                                      "--file", self.risk_feed_file])
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.risk_feed.poll() is not None:
                raise RuntimeError(f"risk_feed.py exited ({self.risk_feed.returncode})")
            try:
                self.risk_status()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"risk_feed.py not up on port {self.risk_feed_port} after {timeout}s")

    def stop_risk(self):
        """Stops the risk feed server: toolgate's polls then fail (connection refused)."""
        if self.risk_feed is not None:
            if self.risk_feed.poll() is None:
                self.risk_feed.terminate()
                self.risk_feed.wait(timeout=10)
            self.processes.remove(self.risk_feed)
            self.risk_feed = None

    def _risk_control(self, method, path, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.risk_feed_port}{path}", method=method,
                                         data=data, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as r:
            return json.loads(r.read())

    def set_risk(self, feed):
        """Replaces the feed toolgate's next poll gets (feed: {"agents": {spiffe_id: {score, flags}}}).
        Bytes are served verbatim, unchecked: a malformed feed."""
        if isinstance(feed, bytes):
            return self._risk_control("PUT", "/risk?unchecked=1", feed)
        return self._risk_control("PUT", "/risk", feed)

    def fail_risk(self, status):
        """Makes the feed answer STATUS (e.g. 503) to every poll; None serves the feed again."""
        return self._risk_control("POST", "/fail", {"status": status})

    def risk_status(self):
        """{"polls": GET /risk requests the feed has answered, "failing": status or None}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.risk_feed_port}/status", timeout=2) as r:
            return json.loads(r.read())

    @staticmethod
    def _ecds(args):
        done = subprocess.run([sys.executable, ECDS] + args, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ecds.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def publish(self, policy_dir):
        """Publishes a policy folder to the running gateway through ECDS (as scripts/reload does)."""
        assert self.ecds_resource, "publish() needs Gateway(ecds=...)"
        return self._ecds([self.ecds_resource, "--policies", policy_dir])

    def upstream_log_text(self):
        """What an upstream given as Gateway(upstream=...) printed."""
        try:
            with open(self.upstream_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_text(self):
        try:
            with open(self.envoy_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- talking to the gateway -------------------------------------------------
    def ssl_context(self, cert):
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
        if cert:
            ctx.load_cert_chain(os.path.join(CERTS, f"{cert}.crt"), os.path.join(CERTS, f"{cert}.key"))
        return ctx

    def request(self, method, path, body=None, headers=None, cert="reader", chunked=False):
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.ssl_context(cert), timeout=10)
        try:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            hdrs = {"content-type": "application/json"} if isinstance(body, (dict, list)) else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs, encode_chunked=chunked)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def mcp(self, method, params=None, id=1, cert="reader", headers=None):
        message = {"jsonrpc": "2.0", "method": method}
        if id is not None:
            message["id"] = id
        if params is not None:
            message["params"] = params
        return self.request("POST", "/mcp", message, headers=headers, cert=cert)

    def call_tool(self, name, arguments=None, id=1, cert="reader", headers=None):
        return self.mcp("tools/call", {"name": name, "arguments": arguments or {}}, id=id, cert=cert, headers=headers)

    # -- what happened -----------------------------------------------------------
    def upstream_requests(self, markers=False):
        """What reached the upstream, in order; without the harness's marker requests unless MARKERS."""
        if not os.path.exists(self.record_path):
            return []
        with open(self.record_path, encoding="utf-8") as f:
            seen = [json.loads(line) for line in f if line.endswith("\n") and line.strip()]
        return seen if markers else [r for r in seen if MARKER not in r["path"]]

    def decisions(self, markers=False):
        """The decision log records, in order; without the harness's marker requests unless MARKERS."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8") as f:
            # Envoy's file sink may be mid-write: a last line without its newline is not read yet.
            records = [json.loads(line) for line in f
                       if line.endswith("\n") and line.strip() and line.strip() != "-"]
        return records if markers else [r for r in records if MARKER not in (r.get("request_id") or "")]

    def upstream_barrier(self, log=False, timeout=5):
        """Sends an allowed marker request after everything sent so far and waits until the
        upstream has it (and with LOG, the decision log too). A request answered before it that
        was going to reach the upstream (or the log) has done so by then: what a negative
        assertion needs instead of a sleep. The marker is a reader's GET /weather/v1/forecast,
        which the shipped policies allow; upstream_requests() and decisions() leave it out."""
        marker = MARKER + uuid.uuid4().hex
        r = self.request("GET", f"/weather/v1/forecast?{marker}", headers={"x-request-id": marker})
        if r.status != 200:
            raise AssertionError(f"the barrier's marker request was refused ({r.status}): {r.body[:300]!r}; "
                                 "upstream_barrier() needs a config and policies that allow it")
        wait_until(lambda: any(marker in u["path"] for u in self.upstream_requests(markers=True)), timeout,
                   f"the marker request {marker} in {self.record_path}")
        if log:
            wait_until(lambda: any(d.get("request_id") == marker for d in self.decisions(markers=True)),
                       timeout, f"the marker's decision record in {self.log_path}")

    def decision(self, decision_id, timeout=5):
        """The decision log record with this id, waiting for the access log to flush."""
        return self._decision_where("decision_id", decision_id, timeout)

    def decision_for_request(self, request_id, timeout=5):
        """The decision log record of the request sent with this x-request-id (allowed calls
        carry their decision id only upstream, so this finds them from the client side)."""
        return self._decision_where("request_id", request_id, timeout)

    def _decision_where(self, field, value, timeout):
        def found():
            return next((r for r in self.decisions(markers=True) if r.get(field) == value), None)
        return wait_until(found, timeout, f"a decision log record with {field} {value} in {self.log_path}")

    def worker_connections(self):
        """Connections each Envoy worker accepted on the agents listener: {"worker_0": n, ...}."""
        pattern = urllib.parse.quote(r"\.worker_[0-9]+\.downstream_cx_total$")
        url = f"http://127.0.0.1:{self.admin_port}/stats?filter={pattern}"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        counts = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if name.startswith(f"listener.127.0.0.1_{self.port}."):
                counts[name.split(".")[-2]] = int(value)
        return counts

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats/prometheus", timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name.split("{")[0]] = float(value)
        return values


class GatewayTestCase(unittest.TestCase):
    """Tests sharing one gateway, started once for the class with CONFIG (None: envoy/toolgate.json)."""
    CONFIG = None
    gw = None

    @classmethod
    def setUpClass(cls):
        # Registered before anything starts: unittest runs class cleanups even when
        # setUpClass (here or in a subclass, after this) raises, and tearDownClass then does not run.
        cls.gw = Gateway(cls.CONFIG)
        cls.addClassCleanup(cls.gw.stop)
        cls.gw.start()
