#!/usr/bin/env python3
"""Agent pace for scripts/bench: one kept-alive connection, one tools/call every 1/RATE s.

  bench_pace.py PORT SECONDS RATE
Sends bench_post.lua's request (the same headers and body, rebuilt here), first once as
soon as called (scripts/bench calls it right after Envoy is ready: the first call after
configuration), then RATE calls a second for SECONDS on the same connection, each sent on
its tick (a late answer delays the next send, never bunches them). Prints one line:
`first_ms p50_ms p99_ms calls`. Any answer but 200 is an error (exit status 1).
"""
import http.client
import math
import sys
import time

port, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
content = "The quick brown fox jumps over the lazy dog. " * 16
BODY = ('{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file",'
        '"arguments":{"path":"/docs/guide/getting-started.md","encoding":"utf-8","max_bytes":65536,'
        '"content":"' + content + '"}}}').encode()
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "x-dev-spiffe-id": "spiffe://toolgate.test/agent/reader",
    "x-agent-intent": "summarize",
    "x-agent-task": "BENCH-1",
    "x-agent-session": "bench-session",
}

connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def call():
    """One request on the kept-alive connection; its latency in ms."""
    started = time.perf_counter()
    connection.request("POST", "/mcp", body=BODY, headers=HEADERS)
    response = connection.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        sys.exit(f"bench_pace.py: port {port} answered {response.status}, not 200")
    return elapsed


first = call()
latencies = []
interval = 1 / rate
tick = time.perf_counter()
for _ in range(max(1, int(seconds * rate))):
    tick += interval
    time.sleep(max(0.0, tick - time.perf_counter()))
    latencies.append(call())
latencies.sort()


def percentile(p):
    """Nearest rank: the smallest latency at or above p% of the calls."""
    return latencies[max(0, math.ceil(p / 100 * len(latencies)) - 1)]


print(f"{first:.3f}\t{percentile(50):.3f}\t{percentile(99):.3f}\t{len(latencies)}")
