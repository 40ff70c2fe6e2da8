"""A fault-injecting HTTP reverse proxy in front of SeaweedFS (loopback only), for
tests/integration/test_faults.py.

Every request is forwarded unchanged (headers included, so SigV4 still verifies, as in
bench/proxy.py). A seeded fraction of object GETs of ``.ltx`` files is then hurt, by mode:

  5xx       answer 503 SlowDown instead of the object
  reset     send the headers and half the body, then reset the connection (RST)
  truncate  send the headers (full Content-Length) and half the body, then close
  flip      flip one byte of the body (one bit pattern 0x5a)
  stall     wait ``stall_s`` seconds before answering at all
  slow      send the body at ``slow_bps`` bytes per second

Listings are never hurt (the faults of interest are in the bytes the reader decodes).
"""
from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade"}
MODES = ("5xx", "reset", "truncate", "flip", "stall", "slow")


class FaultProxy:
    def __init__(self, upstream: str, mode: str | None = None, rate: float = 0.1, seed: int = 1,
                 stall_s: float = 20.0, slow_bps: int = 1024):
        host, port = upstream.replace("http://", "").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.mode = mode
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stall_s = stall_s
        self.slow_bps = slow_bps
        self.hurt = 0
        self.requests = 0
        self.stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                proxy._handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _roll(self) -> bool:
        with self.lock:
            self.requests += 1
            hit = self.mode is not None and self.rng.random() < self.rate
            if hit:
                self.hurt += 1
            return hit

    def _handle(self, h: BaseHTTPRequestHandler):
        n = int(h.headers.get("Content-Length") or 0)
        body_in = h.rfile.read(n) if n else None
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(h.command, h.path, body=body_in, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            status, rh = resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        finally:
            conn.close()
        is_object = h.command == "GET" and ".ltx" in h.path.split("?")[0] and status in (200, 206)
        if is_object and self._roll():
            return self._hurt(h, status, rh, body)
        self._send(h, status, rh, body)
        if h.command != "HEAD":
            h.wfile.write(body)

    def _send(self, h, status, rh, body):
        h.send_response(status)
        upstream_len = None
        for k, v in rh:
            if k.lower() == "content-length":
                upstream_len = v
            else:
                h.send_header(k, v)
        # A HEAD answer keeps the object's length; others carry exactly their body.
        length = upstream_len if h.command == "HEAD" and upstream_len is not None else str(len(body))
        h.send_header("Content-Length", length)
        h.end_headers()
        return h

    def _hurt(self, h, status, rh, body):
        mode = self.mode
        if mode == "5xx":
            err = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            self._send(h, 503, [("Content-Type", "application/xml")], err)
            h.wfile.write(err)
        elif mode == "reset":
            self._send(h, status, rh, body)
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            # SO_LINGER 0: close() sends a RST.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
        elif mode == "truncate":
            self._send(h, status, rh, body)
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "flip":
            b = bytearray(body)
            if b:
                with self.lock:
                    i = self.rng.randrange(len(b))
                b[i] ^= 0x5A
            self._send(h, status, rh, bytes(b))
            h.wfile.write(bytes(b))
        elif mode == "stall":
            self.stopping.wait(self.stall_s)
            self._send(h, status, rh, body)
            try:
                h.wfile.write(body)
            except OSError:
                pass
        elif mode == "slow":
            self._send(h, status, rh, body)
            step = max(1, self.slow_bps // 10)
            try:
                for i in range(0, len(body), step):
                    if self.stopping.is_set():
                        break
                    h.wfile.write(body[i:i + step])
                    h.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        else:
            raise ValueError(mode)
