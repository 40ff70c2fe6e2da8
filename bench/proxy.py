#!/usr/bin/env python3
"""A counting, delaying HTTP reverse proxy for the read benchmark (loopback only).

    python3 bench/proxy.py --upstream 127.0.0.1:8333 [--port 0] [--delay-ms 10]
                           [--upstream-host 127.0.0.1:8333]

Listens on 127.0.0.1, prints one line ``PORT <n>`` to stdout once it accepts connections, and
forwards every request to the upstream server (SeaweedFS's S3, or the other HTTP stores of
bench/backends.py) unchanged: method, path, query, body and *all* headers, including ``Host`` and
``Authorization``. SigV4 signs the ``Host`` header the client sent (the proxy's address, because
the client's endpoint is the proxy), and the upstream verifies the signature against the ``Host``
header it receives, which is that same value, so signed requests still verify. With
``--upstream-host`` the ``Host`` header is replaced by that value instead, for servers that route
by their own address (fake-gcs-server serves XML-API downloads only on its public host) and sign
nothing with it (Azure Shared Key, WebDAV basic auth). Before forwarding, each request sleeps
``--delay-ms`` (a fixed per-request latency: concurrent requests wait concurrently, as over a
real network).

Side channel (not delayed, not counted, not forwarded), under ``/__bench/``:

  GET  /__bench/stats   {"requests", "bytes", "by_kind": {kind: {"requests", "bytes"}},
                         "seq": number of the last logged request, "delay_ms"}
  GET  /__bench/log?since=N   the logged requests with seq > N (at most the last 200000):
                         [{"seq", "t0", "t1", "method", "kind", "key", "range", "status", "bytes"}]
                         t0 = arrival, t1 = last body byte sent (time.monotonic() of this process)
  POST /__bench/reset   zero the counters and drop the log

``bytes`` counts response body bytes sent to the client. ``kind`` is one of ``list`` (a GET on a
bucket: ListObjectsV2; a GCS JSON-API objects.list; an Azure List Blobs; a WebDAV PROPFIND),
``get`` (object GET; ``range`` holds its Range or x-ms-range header), ``head``, ``put``,
``other``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade"}


class Counters:
    def __init__(self, log_cap: int = 200_000):
        self.lock = threading.Lock()
        self.log: deque = deque(maxlen=log_cap)
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = 0
            self.bytes = 0
            self.by_kind: dict[str, dict[str, int]] = {}
            self.seq = 0
            self.log.clear()

    def start(self) -> int:
        with self.lock:
            self.requests += 1
            self.seq += 1
            return self.seq

    def done(self, seq, t0, method, kind, key, rng, status, nbytes):
        with self.lock:
            self.bytes += nbytes
            k = self.by_kind.setdefault(kind, {"requests": 0, "bytes": 0})
            k["requests"] += 1
            k["bytes"] += nbytes
            self.log.append({"seq": seq, "t0": t0, "t1": time.monotonic(), "method": method,
                             "kind": kind, "key": key, "range": rng, "status": status,
                             "bytes": nbytes})

    def snapshot(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "bytes": self.bytes,
                    "by_kind": json.loads(json.dumps(self.by_kind)), "seq": self.seq}

    def entries_since(self, since: int) -> list:
        with self.lock:
            return [e for e in self.log if e["seq"] > since]


def classify(method: str, path: str) -> tuple[str, str]:
    u = urllib.parse.urlsplit(path)
    parts = [p for p in u.path.split("/") if p]
    key = urllib.parse.unquote("/".join(parts[1:])) if len(parts) > 1 else ""
    q = dict(urllib.parse.parse_qsl(u.query))
    if method == "PROPFIND":  # WebDAV: a directory listing
        return "list", urllib.parse.unquote(u.path)
    if method == "GET":
        gcs_list = len(parts) == 5 and parts[:3] == ["storage", "v1", "b"] and parts[4] == "o"
        if gcs_list or q.get("comp") == "list":  # GCS objects.list, Azure List Blobs
            return "list", "?prefix=" + q.get("prefix", "")
        if key:
            return "get", key
        return "list", "?prefix=" + q.get("prefix", "")
    if method == "HEAD":
        return "head", key
    if method == "PUT":
        return "put", key
    return "other", key


def make_handler(upstream: str, delay: float, counters: Counters, upstream_host: str | None = None):
    tls = threading.local()

    def conn(fresh=False):
        c = getattr(tls, "conn", None)
        if fresh or c is None:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(upstream, timeout=120)
            c.connect()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls.conn = c
        return c

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "bench-proxy"

        def log_message(self, *a):  # quiet
            pass

        def setup(self):
            # No Nagle: the status line/headers and the body are separate writes, and Nagle's
            # wait for the ACK of the first (which the client delays, ~40 ms on Linux) would
            # add itself to every response.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

        def _json(self, obj, status=200):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _side(self) -> bool:
            if not self.path.startswith("/__bench/"):
                return False
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if u.path == "/__bench/stats":
                s = counters.snapshot()
                s["delay_ms"] = delay * 1000
                self._json(s)
            elif u.path == "/__bench/log":
                q = dict(urllib.parse.parse_qsl(u.query))
                self._json(counters.entries_since(int(q.get("since", 0))))
            elif u.path == "/__bench/reset" and self.command == "POST":
                counters.reset()
                self._json({"ok": True})
            else:
                self._json({"error": "unknown side-channel path"}, 404)
            return True

        def _proxy(self):
            if self._side():
                return
            t0 = time.monotonic()
            seq = counters.start()
            kind, key = classify(self.command, self.path)
            rng = self.headers.get("Range") or self.headers.get("x-ms-range")
            body = None
            n = self.headers.get("Content-Length")
            if n:
                body = self.rfile.read(int(n))
            elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = self._read_chunked()
            if delay > 0:
                time.sleep(delay)
            status, headers, data, reason = self._forward(body)
            sent = 0
            try:
                self.send_response(status, reason)
                for k, v in headers:
                    if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                        continue
                    self.send_header(k, v)
                if self.command == "HEAD":
                    cl = next((v for k, v in headers if k.lower() == "content-length"), None)
                    if cl is not None:
                        self.send_header("Content-Length", cl)
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and data:
                    self.wfile.write(data)
                    sent = len(data)
                self.wfile.flush()
            finally:
                counters.done(seq, t0, self.command, kind, key, rng, status, sent)

        def _read_chunked(self) -> bytes:
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()

        def _forward(self, body):
            hdrs = [(k, v) for k, v in self.headers.items()
                    if k.lower() not in HOP_BY_HOP and not
                    (k.lower() == "content-length" and body is not None)]
            if body is not None:
                hdrs.append(("Content-Length", str(len(body))))
            if upstream_host:
                hdrs = [(k, upstream_host if k.lower() == "host" else v) for k, v in hdrs]
            last = None
            for attempt in range(2):
                try:
                    c = conn(fresh=attempt > 0)
                    c.putrequest(self.command, self.path, skip_host=True,
                                 skip_accept_encoding=True)
                    for k, v in hdrs:
                        c.putheader(k, v)
                    c.endheaders(body)
                    r = c.getresponse()
                    data = r.read() if self.command != "HEAD" else b""
                    if self.command == "HEAD":
                        r.read()
                    return r.status, r.getheaders(), data, r.reason
                except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError,
                        http.client.BadStatusLine, OSError) as e:
                    last = e
                    conn(fresh=True)
            msg = f"proxy: upstream failed: {last!r}".encode()
            return 502, [("Content-Type", "text/plain")], msg, "Bad Gateway"

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _proxy
        do_PROPFIND = do_OPTIONS = do_MKCOL = do_MOVE = do_COPY = _proxy  # WebDAV

    return Handler


class ProxyServer(ThreadingHTTPServer):
    # The listen backlog is taken at construction: setting it afterwards has no effect, and a
    # client sending 16 requests at once would see connections dropped (1 s retries).
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that went away (a benchmark child that exited): not an error
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="host:port of the S3 server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    ap.add_argument("--upstream-host", help="Host header sent upstream (default: the client's)")
    a = ap.parse_args()
    counters = Counters()
    srv = ProxyServer(("127.0.0.1", a.port),
                      make_handler(a.upstream, a.delay_ms / 1000.0, counters, a.upstream_host))
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
