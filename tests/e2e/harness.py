"""Runs a real Envoy with the built toolgate.wasm in front of the sample MCP server, over real mTLS."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

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
ECDS_RESOURCE = "toolgate.ecds.json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


class Gateway:
    """One Envoy + sample upstream. Use as a context manager; everything stops on exit."""

    def __init__(self, plugin_config=None, failure_policy="FAIL_RELOAD", wasm=None, xfcc_mode="SANITIZE",
                 workers=1, ecds=None):
        """ecds: deliver the filter's config through ECDS (a watched directory) instead of
        inline: True keeps plugin_config's own policies, a policy folder replaces them
        (scripts/lib/ecds.py); publish() then updates the policies of the running gateway."""
        self.workers = workers
        self.dir = tempfile.mkdtemp(prefix="toolgate-e2e-")
        self.admin_port, self.port, self.upstream_port = free_port(), free_port(), free_port()
        self.log_path = os.path.join(self.dir, "decisions.log")
        self.record_path = os.path.join(self.dir, "upstream.jsonl")
        config_path = os.path.join(self.dir, "toolgate.json")
        if plugin_config is None:
            shutil.copy(DEFAULT_CONFIG, config_path)
        else:
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config, indent=2))
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
             f"JWT_KEYS={JWT_KEYS}"] + ecds_values,
            check=True)
        self.processes = []
        self.envoy = None
        self.envoy_log = os.path.join(self.dir, "envoy.log")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, wait_ready=True):
        self.upstream = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts/lib/sample_mcp_server.py"),
             "--port", str(self.upstream_port), "--record", self.record_path])
        self.processes.append(self.upstream)
        with open(self.envoy_log, "w") as log:
            self.envoy = subprocess.Popen(
                [ENVOY, "-c", self.envoy_config, "--use-dynamic-base-id", "--concurrency", str(self.workers),
                 "--file-flush-interval-msec", "100", "-l", "info"],
                stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(self.envoy)
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.envoy.poll() is not None:
                raise RuntimeError(f"envoy exited ({self.envoy.returncode}):\n{self.log_text()[-3000:]}")
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

    def log_text(self):
        with open(self.envoy_log, encoding="utf-8", errors="replace") as f:
            return f.read()

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
    def upstream_requests(self):
        if not os.path.exists(self.record_path):
            return []
        with open(self.record_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def decisions(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip() and line.strip() != "-"]

    def decision(self, decision_id, timeout=5):
        """The decision log record with this id, waiting for the access log to flush."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for record in self.decisions():
                if record.get("decision_id") == decision_id:
                    return record
            time.sleep(0.05)
        raise AssertionError(f"no decision log record {decision_id} in {self.log_path}")

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
        cls.gw = Gateway(cls.CONFIG)
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
