"""Clients for a server under test: threads, each with its own persistent HTTP connection
(http.client reconnects by itself when gunicorn's sync worker closes one)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any


class Client:
    """One persistent connection; `call` answers (status, parsed JSON or text, ms)."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = headers

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, float]:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {**self.headers, **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=data, headers=all_headers)
            answer = self.connection.getresponse()
            raw = answer.read()
        except (http.client.HTTPException, ConnectionError):
            # The server closed a kept connection as we reused it: once more, on a new one.
            self.connection.close()
            started = time.perf_counter()
            self.connection.request(method, path, body=data, headers=all_headers)
            answer = self.connection.getresponse()
            raw = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        kind = answer.getheader("Content-Type", "")
        content = json.loads(raw) if kind.startswith("application/json") and raw else raw
        return answer.status, content, elapsed

    def close(self) -> None:
        self.connection.close()


def burst(port: int, headers: dict[str, str], clients: int, duration: float,
          request: Callable[[], tuple[str, str, Any]],
          expect: int) -> dict[str, Any]:
    """`clients` threads send `request()` as fast as answers come, for `duration` seconds;
    answers the latencies (ms) of those with status `expect`, requests/s, and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def work() -> None:
        client = Client(port, headers)
        mine, bad = [], []
        start.wait()
        while time.perf_counter() < stop_at[0]:
            method, path, body = request()
            try:
                status, content, ms = client.call(method, path, body)
            except Exception as exc:  # noqa: BLE001 - counted, shown in the JSON
                bad.append(f"{type(exc).__name__}: {exc}")
                continue
            if status == expect:
                mine.append(ms)
            else:
                bad.append(f"{status}: {str(content)[:200]}")
        client.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + duration
    start.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "per_second": len(latencies) / wall,
            "errors": len(errors), "first_errors": errors[:3]}
