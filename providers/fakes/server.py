"""A small base for strict fake HTTP servers on loopback, for tests, benchmarks and demos.

A fake is a real HTTP server (stdlib ThreadingHTTPServer) running in a background thread:

    class MyFake(FakeServer):
        def handle(self, request: FakeRequest) -> FakeResponse:
            if request.path == "/ping":
                return FakeResponse.json({"ok": True})
            return FakeResponse.json({"detail": "Not found."}, status=404)

    with MyFake() as fake:            # port 0: an ephemeral port, for tests
        requests.get(fake.url + "/ping")
    MyFake(port=8101).serve_forever()  # a fixed port, for a management command or a demo

`handle` is called from the server's threads; guard shared state with `self.lock`. Every request
is recorded in `self.requests` so tests can assert what was sent, and `self.connections` counts
the TCP connections accepted (a client that keeps its connections alive opens few). Stopping a
fake closes the connections clients still hold open, so no pooled connection outlives it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # header names lower-cased
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow server)

    @classmethod
    def json(cls, data, status: int = 200, **kwargs) -> FakeResponse:
        body = json.dumps(data).encode()  # ASCII with \u escapes, as DRF-style servers send
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return cls(status=status, body=body, headers=headers, **kwargs)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type="application/json", **kwargs):
        headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
        return cls(status=status, body=body, headers=headers, **kwargs)


class FakeServer:
    """Subclass and implement `handle`. Start with `start()` or a `with` block."""

    host = "127.0.0.1"

    def __init__(self, *, port: int = 0):
        self.lock = threading.RLock()
        self.requests: list[FakeRequest] = []
        self.connections = 0  # TCP connections accepted so far
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((self.host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- to implement -------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        raise NotImplementedError

    # --- running ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self):
        self._thread = threading.Thread(
            # A short poll interval makes stop() quick: tests start and stop many fakes.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self):
        """Block in the calling thread (Ctrl-C stops it)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self):
        self._stopping.set()  # cut short any slow response still waiting
        self._httpd.shutdown()
        self._httpd.server_close()
        with self.lock:
            still_open, self._open = list(self._open), set()
        for connection in still_open:
            with contextlib.suppress(OSError):  # closed by the client meanwhile
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- plumbing -----------------------------------------------------------------------------
    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; without TCP_NODELAY, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every response.
            disable_nagle_algorithm = True

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.connections += 1
                    fake._open.add(self.connection)

            def finish(self):
                with fake.lock:
                    fake._open.discard(self.connection)
                super().finish()

            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = FakeRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with fake.lock:
                    fake.requests.append(request)
                response = fake.handle(request)
                if response.delay and fake._stopping.wait(response.delay):
                    return
                try:
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout fired): nothing to tell it

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format, *args):
                pass  # keep test output clean

        return Handler
