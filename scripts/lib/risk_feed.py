#!/usr/bin/env python3
"""Serves a sample risk feed (GET /risk) that toolgate polls, with control endpoints for demos and tests.

The feed says which agents are at risk (toolgate's `risk_feed`; see docs/behaviour.md, "The risk feed"):
  {"agents": {"spiffe://toolgate.test/agent/payments": {"score": 90, "flags": ["compromised"]}}}
`score` is an integer 0..100 and `flags` a list of strings, both optional.

  GET  /risk    the current feed: 200, application/json (or the status set by POST /fail)
  PUT  /risk    replace the feed with the JSON body; 400 if it is not a feed as above.
                With ?unchecked=1 the body is stored as is and served verbatim, so tests can
                hand toolgate a malformed feed.
  POST /fail    {"status": 503}: GET /risk answers that status from now on;
                {"status": null}: it serves the feed again
  GET  /status  {"polls": GET /risk requests so far, "failing": status or null}

Usage: risk_feed.py --port 8081 [--file feed.json] [--verbose]
Standard library only; SIGTERM stops it cleanly.
"""
import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

EMPTY = {"agents": {}}


def feed_problem(feed):
    """Why FEED is not a valid risk feed, or None if it is."""
    if not isinstance(feed, dict):
        return "the feed must be a JSON object"
    extra = set(feed) - {"agents"}
    if extra:
        return f"unknown top-level keys {sorted(extra)}; only \"agents\" is allowed"
    agents = feed.get("agents")
    if not isinstance(agents, dict):
        return "\"agents\" must be an object of SPIFFE ID -> {score, flags}"
    for agent, risk in agents.items():
        if not isinstance(risk, dict):
            return f"{agent}: must be an object with optional score and flags"
        extra = set(risk) - {"score", "flags"}
        if extra:
            return f"{agent}: unknown keys {sorted(extra)}; only score and flags are allowed"
        score = risk.get("score", 0)
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
            return f"{agent}: score must be an integer from 0 to 100"
        flags = risk.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
            return f"{agent}: flags must be a list of strings"
    return None


class BadRequest(Exception):
    """A control request the server answers with 400."""


class State:
    """The feed served, as bytes, and the failure status if GET /risk is made to fail."""

    def __init__(self, feed):
        self.lock = threading.Lock()
        self.body = json.dumps(feed).encode()
        self.failing = None
        self.polls = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "toolgate-risk-feed/1"
    state = None
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("risk_feed: %s - %s\n" % (self.address_string(), fmt % args))

    def _send(self, status, payload=None, raw=None):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the poller gave up waiting (a timeout, or the feed was paused): nobody to answer

    def _body(self):
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _json_body(self):
        """The request's JSON body; raises BadRequest if it is not JSON."""
        try:
            return json.loads(self._body())
        except ValueError as e:
            raise BadRequest(f"the body is not JSON: {e}") from None

    def do_GET(self):
        path = urlsplit(self.path).path
        state = self.state
        if path == "/risk":
            with state.lock:
                state.polls += 1
                failing, body = state.failing, state.body
            if failing is not None:
                return self._send(failing, {"error": f"failing on purpose (POST /fail): {failing}"})
            return self._send(200, raw=body)
        if path == "/status":
            with state.lock:
                return self._send(200, {"polls": state.polls, "failing": state.failing})
        return self._send(404, {"error": f"no {path}; GET /risk serves the feed"})

    def do_PUT(self):
        url = urlsplit(self.path)
        if url.path != "/risk":
            return self._send(404, {"error": f"no {url.path}; PUT /risk replaces the feed"})
        if parse_qs(url.query).get("unchecked") == ["1"]:
            body = self._body()
            with self.state.lock:
                self.state.body = body
            return self._send(200, {"stored": len(body), "checked": False})
        try:
            feed = self._json_body()
        except BadRequest as e:
            return self._send(400, {"error": str(e)})
        problem = feed_problem(feed)
        if problem:
            return self._send(400, {"error": problem})
        with self.state.lock:
            self.state.body = json.dumps(feed).encode()
        return self._send(200, {"agents": len(feed["agents"])})

    def do_POST(self):
        path = urlsplit(self.path).path
        if path != "/fail":
            return self._send(404, {"error": f"no {path}; POST /fail sets or clears a failure status"})
        try:
            request = self._json_body()
        except BadRequest as e:
            return self._send(400, {"error": str(e)})
        status = request.get("status", "missing") if isinstance(request, dict) else "missing"
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                                   or not 100 <= status <= 599 or status == 200):
            return self._send(400, {"error": "expected {\"status\": N} (an HTTP status other than 200) "
                                             "or {\"status\": null}"})
        with self.state.lock:
            self.state.failing = status
        return self._send(200, {"failing": status})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--file", help="initial feed (JSON); default {\"agents\": {}}")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args()
    feed = EMPTY
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                feed = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"risk_feed.py: cannot read {args.file}: {e}")
        problem = feed_problem(feed)
        if problem:
            sys.exit(f"risk_feed.py: {args.file}: {problem}")
    Handler.state = State(feed)
    Handler.verbose = args.verbose
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    # SIGTERM (as from Popen.terminate or docker stop) leaves serve_forever through SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
