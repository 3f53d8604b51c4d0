"""A minimal A2A JSON-RPC agent for toolgate's raw-HTTP e2e test (tests/e2e/test_a2a.py): answers
SendMessage / message/send with a new task (v1.0 and v0.3 result shapes), SendStreamingMessage
with an SSE stream whose first event carries the task, and GetTask / CancelTask for any id (with the
decision id toolgate forwarded in its metadata), so the test sees what toolgate let through. The a2a-sdk based tests are in the A2A interop suite.

usage: a2a_upstream.py --port PORT
"""
import argparse
import itertools
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTER = itertools.count(1)


def task(task_id):
    return {"id": task_id, "contextId": f"ctx-{task_id}", "status": {"state": "TASK_STATE_SUBMITTED"}}


class Agent(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)

    def send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        method, params, rid = request.get("method"), request.get("params") or {}, request.get("id")
        if method in ("SendMessage", "message/send"):
            task_id = f"task-{next(COUNTER)}"
            result = {"task": task(task_id)} if method == "SendMessage" else dict(task(task_id), kind="task")
            return self.send(200, {"jsonrpc": "2.0", "id": rid, "result": result})
        if method == "SendStreamingMessage":
            task_id = f"task-{next(COUNTER)}"
            events = [{"task": task(task_id)}, {"statusUpdate": {"taskId": task_id, "status": {"state": "TASK_STATE_COMPLETED"}}}]
            body = "".join(f"data: {json.dumps({'jsonrpc': '2.0', 'id': rid, 'result': e})}\n\n" for e in events)
            return self.send(200, body.encode(), "text/event-stream")
        if method in ("GetTask", "CancelTask", "tasks/get", "tasks/cancel"):
            # The decision id toolgate forwarded, so the test can tell which worker let it through.
            result = dict(task(params.get("id")), metadata={"decision": self.headers.get("x-toolgate-decision-id")})
            return self.send(200, {"jsonrpc": "2.0", "id": rid, "result": result})
        return self.send(200, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "method not found"}})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Agent).serve_forever()


if __name__ == "__main__":
    main()
