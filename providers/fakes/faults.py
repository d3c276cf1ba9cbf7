"""Switchable faults and a control API for the strict provider fakes.

A `ControlledFake` is a `FakeServer` that can be told to misbehave on its next requests, from
Python or over HTTP (so a test driving an out-of-process worker can do the same):

    fake.fail_next(2, status=503)        # answer 503 without doing anything
    fake.delay_next(1, seconds=3)        # do the work, answer 3 s late (client timeouts)
    fake.drop_next(1)                    # do the work, then hang up without answering
    fake.drop_next(1, process=False)     # hang up before doing anything

    POST /_fake/faults   {"kind": "fail"|"delay"|"drop", "count": 1, "status": 500,
                          "seconds": 3, "process": true}
    GET  /_fake/requests what the fake received (control calls left out)
    GET  /_fake/state    what the fake currently holds (each fake's own shape)
    POST /_fake/config   {"knownIds": [...]} or {"knownIds": null} (= accept any id)
    POST /_fake/reset    forget requests, state and pending faults

Subclasses implement `handle_api(request)` and `error_response(status, detail)`, and keep their
state under `self.lock`.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from socketserver import BaseServer

import requests

from .server import FakeRequest, FakeResponse, FakeServer

CONTROL_PREFIX = "/_fake/"


class DropConnection(Exception):
    """Raised from a handler to close the connection without sending any response."""


@dataclass
class Fault:
    kind: str  # "fail" | "delay" | "drop"
    status: int = 500
    seconds: float = 0.0
    process: bool = True  # delay/drop: do the work first (the answer is what gets lost)


class ControlledFake(FakeServer):
    def __init__(self, *, port: int = 0, known_ids=None):
        super().__init__(port=port)
        self._faults: deque[Fault] = deque()
        self.known_ids = set(known_ids) if known_ids is not None else None
        server = self._httpd

        def handle_error(request, client_address):
            # A planned hang-up is not an error worth a traceback on stderr.
            if isinstance(sys.exc_info()[1], DropConnection):
                return
            BaseServer.handle_error(server, request, client_address)

        server.handle_error = handle_error

    # --- for subclasses -----------------------------------------------------------------------
    def handle_api(self, request: FakeRequest) -> FakeResponse:
        raise NotImplementedError

    def error_response(self, status: int, detail: str = "") -> FakeResponse:
        return FakeResponse.json({"status": status, "detail": detail}, status=status)

    def state(self) -> dict:
        return {}

    def reset_state(self) -> None:
        pass

    def is_known(self, order_id) -> bool:
        with self.lock:
            return self.known_ids is None or order_id in self.known_ids

    # --- faults from Python -------------------------------------------------------------------
    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        self._add_faults(count, Fault("fail", status=status))

    def delay_next(self, count: int = 1, *, seconds: float = 1.0, process: bool = True) -> None:
        self._add_faults(count, Fault("delay", seconds=seconds, process=process))

    def drop_next(self, count: int = 1, *, process: bool = True) -> None:
        self._add_faults(count, Fault("drop", process=process))

    def reset(self) -> None:
        with self.lock:
            self._faults.clear()
            self.requests.clear()
            self.reset_state()

    @property
    def received(self) -> list[FakeRequest]:
        """The API requests received (control calls left out), oldest first."""
        with self.lock:
            return [r for r in self.requests if not r.path.startswith(CONTROL_PREFIX)]

    def _add_faults(self, count: int, fault: Fault) -> None:
        with self.lock:
            self._faults.extend(Fault(**fault.__dict__) for _ in range(count))

    def _next_fault(self) -> Fault | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    # --- dispatching --------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        fault = self._next_fault()
        if fault is None:
            return self.handle_api(request)
        if fault.kind == "fail":
            return self.error_response(fault.status, "Injected fault.")
        if fault.kind == "drop":
            if fault.process:
                self.handle_api(request)
            raise DropConnection
        if fault.process:
            response = self.handle_api(request)
        else:
            response = self.error_response(503, "Injected delay.")
        response.delay = fault.seconds
        return response

    def _control(self, request: FakeRequest) -> FakeResponse:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        if request.method == "GET" and action == "requests":
            return FakeResponse.json([_describe(r) for r in self.received])
        if request.method == "GET" and action == "state":
            with self.lock:
                return FakeResponse.json(self.state())
        if request.method != "POST":
            return FakeResponse.json({"detail": "Method not allowed."}, status=405)
        try:
            data = request.json() or {}
        except ValueError:
            return FakeResponse.json({"detail": "Send JSON."}, status=400)
        if action == "reset":
            self.reset()
            return FakeResponse.json({"ok": True})
        if action == "config":
            known = data.get("knownIds")
            with self.lock:
                self.known_ids = set(known) if known is not None else None
            return FakeResponse.json({"ok": True})
        if action == "faults":
            return self._control_faults(data)
        return FakeResponse.json({"detail": "Unknown control action."}, status=404)

    def _control_faults(self, data: dict) -> FakeResponse:
        kind, count = data.get("kind"), data.get("count", 1)
        if not isinstance(count, int) or count < 1:
            return FakeResponse.json({"detail": "count: a whole number ≥ 1."}, status=400)
        if kind == "fail":
            self.fail_next(count, status=int(data.get("status", 500)))
        elif kind == "delay":
            self.delay_next(
                count,
                seconds=float(data.get("seconds", 1.0)),
                process=bool(data.get("process", True)),
            )
        elif kind == "drop":
            self.drop_next(count, process=bool(data.get("process", True)))
        else:
            return FakeResponse.json({"detail": "kind: fail, delay or drop."}, status=400)
        return FakeResponse.json({"ok": True})


def _describe(request: FakeRequest) -> dict:
    try:
        body = request.json()
    except ValueError:
        body = request.body.decode(errors="replace")
    return {
        "method": request.method,
        "path": request.path,
        "headers": request.headers,
        "body": body,
    }


class FakeControl:
    """Drive a fake running in another process through its control API."""

    def __init__(self, base_url: str, *, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _post(self, action: str, payload: dict) -> None:
        url = f"{self.base_url}{CONTROL_PREFIX}{action}"
        requests.post(url, json=payload, timeout=self.timeout).raise_for_status()

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        self._post("faults", {"kind": "fail", "count": count, "status": status})

    def delay_next(self, count: int = 1, *, seconds: float = 1.0, process: bool = True) -> None:
        payload = {"kind": "delay", "count": count, "seconds": seconds, "process": process}
        self._post("faults", payload)

    def drop_next(self, count: int = 1, *, process: bool = True) -> None:
        self._post("faults", {"kind": "drop", "count": count, "process": process})

    def set_known_ids(self, known_ids) -> None:
        self._post("config", {"knownIds": None if known_ids is None else list(known_ids)})

    def reset(self) -> None:
        self._post("reset", {})

    def requests(self) -> list[dict]:
        url = f"{self.base_url}{CONTROL_PREFIX}requests"
        response = requests.get(url, timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        response = requests.get(f"{self.base_url}{CONTROL_PREFIX}state", timeout=self.timeout)
        response.raise_for_status()
        return response.json()
