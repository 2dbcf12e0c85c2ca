"""A small recording/playback HTTP server on 127.0.0.1 for running real SDKs against.

Each request is recorded (method, path, query, headers, body). Replies come from routes: a route
matches a method and a path pattern and answers with a handler; scripted replies queued on a
route (``server.script("POST", "/v1/messages", Reply(529), Reply(429))``) are played first, in
order, before the handler answers again. A reply can be an error status, malformed JSON, or a
delay longer than the client's timeout.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: longer than the client's timeout = a timeout

    @classmethod
    def malformed(cls, status: int = 200) -> Reply:
        body = b'{"id": "x", "truncated'
        return cls(status, body=body, headers={"content-type": "application/json"})

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.body is not None:
            headers.setdefault("content-type", "application/octet-stream")
            return self.body, headers
        headers.setdefault("content-type", "application/json")
        return json.dumps(self.json if self.json is not None else {}).encode(), headers


Handler = Callable[[Recorded, re.Match[str]], Reply]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    scripted: deque[Reply] = field(default_factory=deque)


class FakeServer:
    """An HTTP server on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: list[Route] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler | Reply) -> None:
        """Answer ``method path`` (a regex matched against the whole path) with ``handler``."""
        fn = handler if callable(handler) else (lambda _req, _m, r=handler: r)
        self.routes.append(Route(method.upper(), re.compile(path), fn))

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Play ``replies`` in order on the next matching requests, then the route's handler.

        ``path`` is a route's pattern as given to :meth:`route`, or a path it matches.
        """
        method = method.upper()
        same = [r for r in self.routes if r.method == method and r.pattern.pattern == path]
        route = same[0] if same else self._find(method, path)
        if route is None:
            raise KeyError(f"no route {method} {path}")
        with self._lock:
            route.scripted.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            for route in self.routes:
                route.scripted.clear()

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [
            r
            for r in list(self.requests)
            if (method is None or r.method == method.upper())
            and (path is None or re.fullmatch(path, r.path))
        ]

    # -- serving -------------------------------------------------------------------------

    def _find(self, method: str, path: str) -> Route | None:
        for route in self.routes:
            if route.method == method and route.pattern.fullmatch(path):
                return route
        return None

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            route = self._find(request.method, request.path)
            scripted = route.scripted.popleft() if route and route.scripted else None
        if route is None:
            return Reply(404, {"error": f"no route for {request.method} {request.path}"})
        if scripted is not None:
            return scripted
        match = route.pattern.fullmatch(request.path)
        assert match is not None
        return route.handler(request, match)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    body = b"".join(_read_chunks(self.rfile))
                else:
                    body = self.rfile.read(length) if length else b""
                request = Recorded(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = server._answer(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload, headers = reply.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return _Handler


def _read_chunks(stream: Any) -> Iterator[bytes]:
    while True:
        size = int(stream.readline().strip().split(b";")[0], 16)
        if size == 0:
            stream.readline()
            return
        yield stream.read(size)
        stream.readline()
