"""A TCP proxy for fault tests: forwards 127.0.0.1:port to a server, and can cut every connection after some bytes
from the server or freeze (stop forwarding while keeping the sockets open, as a silent network partition does)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Proxy:
    target: tuple[str, int]
    cut_after: int | None = None  # bytes from the server per connection, then both sockets are closed
    freeze_after: int | None = None  # bytes from the server on one connection, then everything freezes
    frozen: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    received: list[int] = field(default_factory=list)  # bytes from the server, per connection
    _stop: threading.Event = field(default_factory=threading.Event)
    _sockets: list[socket.socket] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self.frozen.set()

    def serve(self) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self._sockets.append(listener)
        listener.settimeout(0.2)

        def accept() -> None:
            while not self._stop.is_set():
                try:
                    client, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                server = socket.create_connection(self.target)
                self._sockets += [client, server]
                threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
                self.received.append(0)
                threading.Thread(target=self._pump, args=(server, client, self.cut_after, len(self.received) - 1),
                                 daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None, count: int = -1) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                data = source.recv(65536)
                if not data:
                    break
                while self.frozen.is_set() and not self._stop.is_set():
                    self._stop.wait(0.1)  # hold the data: neither side hears anything
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[:max(limit - sent, 0)])
                    break
                sink.sendall(data)
                sent += len(data)
                if count >= 0:
                    self.received[count] = sent
                    if self.freeze_after is not None and sent > self.freeze_after:
                        self.frozen.set()
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                end.close()

    def close(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def proxy(host: str, port: int, cut_after: int | None = None, freeze_after: int | None = None) -> Iterator[Proxy]:
    running = Proxy((host, port), cut_after, freeze_after)
    running.serve()
    try:
        yield running
    finally:
        running.close()
