#!/usr/bin/env python3
"""A small MCP tool server (JSON-RPC 2.0 over Streamable HTTP) and REST API, for the demo and tests.

It records every request it receives as one JSON line in --record, so tests can
prove what reached the upstream and what did not.
"""
import argparse
import json
import os
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The tools it lists are the committed tools/list result examples/demo/arguments.cedarschema is
# generated from, so the demo server and the policies' argument types cannot drift apart.
DEFAULT_TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/demo/mcp/tools.json")
TOOLS = []
# read_file's answers by path, set with POST /_sample/files {"path": "text", ...}; other
# paths answer like any tool. A read_file with a progressToken in its _meta (and a client
# that accepts SSE) is answered as an SSE stream: progress notifications, then the result.
FILES = {}
# Seconds between the SSE events of such an answer (POST /_sample/files {"_delay": 0.3}).
SSE_DELAY = [0.2]


def load_tools(path):
    with open(path, encoding="utf-8") as f:
        listed = json.load(f)
    if isinstance(listed, dict):
        listed = listed.get("result", listed)["tools"]
    return listed


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record_lock = threading.Lock()
    record_path = None

    def log_message(self, *args):  # keep the demo output readable
        pass

    def _record(self, body):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        with self.record_lock, open(self.record_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def _read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(self, status, payload, content_type="application/json", headers=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self._read_body()
        if self.path == "/_sample/files":  # the tests' control endpoint, not recorded
            files = json.loads(body)
            SSE_DELAY[0] = float(files.pop("_delay", SSE_DELAY[0]))
            FILES.update(files)
            return self._send(200, {"files": sorted(FILES)})
        self._record(body)
        if not self.path.startswith("/mcp"):
            return self._send(201, {"ok": True, "path": self.path})
        try:
            message = json.loads(body)
        except ValueError:
            return self._send(400, {"error": "not json"})
        if isinstance(message, list):
            replies = [r for r in (self._reply(m) for m in message) if r is not None]
            return self._send(200, replies) if replies else self._send(202, None)
        reply = self._reply(message)
        params = message.get("params") or {}
        token = (params.get("_meta") or {}).get("progressToken")
        if reply is not None and token is not None and "text/event-stream" in self.headers.get("accept", ""):
            return self._stream(reply, token)
        if reply is None:
            return self._send(202, None)
        # Like a stateful SDK server, the initialize answer mints the session (it does not
        # enforce sessions: a test can send any id and see what toolgate did with it).
        minted = {"mcp-session-id": uuid.uuid4().hex} if message.get("method") == "initialize" else {}
        return self._send(200, reply, headers=minted)

    def _stream(self, reply, token, steps=3):
        """Answers as SSE, chunked: STEPS progress notifications SSE_DELAY apart, then the reply."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        for n in range(1, steps + 1):
            progress = {"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": n, "total": steps + 1}}
            chunk(f"event: message\ndata: {json.dumps(progress)}\n\n".encode())
            time.sleep(SSE_DELAY[0])
        # The result's event in two chunks, cut inside its text: one event all the same.
        event = f"event: message\ndata: {json.dumps(reply)}\n\n".encode()
        cut = len(event) // 2
        chunk(event[:cut])
        time.sleep(SSE_DELAY[0] / 2)
        chunk(event[cut:])
        chunk(b"")

    def _reply(self, message):
        if "id" not in message:
            return None  # a notification
        method, params = message.get("method"), message.get("params") or {}
        if method == "initialize":
            result = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "toolgate-sample", "version": "1.0"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call" and params.get("name") == "read_file" \
                and (params.get("arguments") or {}).get("path") in FILES:
            text = FILES[params["arguments"]["path"]]
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        elif method == "tools/call":
            text = f"{params.get('name')} ran with {json.dumps(params.get('arguments', {}), sort_keys=True)}"
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            result = {}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    def do_GET(self):
        # A GET may carry a body too: read it, or it would be taken for the next request.
        self._record(self._read_body())
        # ?status=NNN: answer with that status, as a server refusing an allowed call would.
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "status" in query:
            return self._send(int(query["status"][0]), {"error": "asked to fail", "path": self.path})
        if self.path.startswith("/weather"):
            return self._send(200, {"city": "Paris", "forecast": "sunny", "path": self.path})
        return self._send(200, {"ok": True, "path": self.path})

    def do_DELETE(self):
        self._record(self._read_body())
        return self._send(200, {"ok": True})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True, help="JSON-lines file of received requests")
    parser.add_argument("--tools", default=DEFAULT_TOOLS, help="MCP tools/list result to serve")
    args = parser.parse_args()
    TOOLS.extend(load_tools(args.tools))
    Handler.record_path = args.record
    open(args.record, "a").close()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
