"""A user-space UDP relay that adds delay, for the poor-link tests (this kernel has no netem).

Clients send to the relay; it forwards each datagram to the target after `up_s`, and the
answers back after `down_s`. One upstream socket per client, so the target (a TURN
server) sees each client apart. Runs its own event loop in a thread; bounded: a datagram
waiting longer than the delay plus a second is dropped, as a congested link would.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import cast

Address = tuple[str, int]
MAX_CLIENTS = 64


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpDelayRelay, client: Address) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.relay.later(self.relay.down_s, self.relay.reply, data, self.client)


class _Front(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpDelayRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.relay.forward(data, addr)


@dataclass
class UdpDelayRelay:
    listen: Address
    target: Address
    up_s: float = 0.0
    down_s: float = 0.0
    _loop: asyncio.AbstractEventLoop | None = None
    _front: asyncio.DatagramTransport | None = None
    _ups: dict[Address, _Upstream] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            front, _ = loop.run_until_complete(loop.create_datagram_endpoint(
                lambda: _Front(self), local_addr=self.listen))
            self._front = front
            ready.set()
            loop.run_forever()
            front.close()
            for up in self._ups.values():
                if up.transport is not None:
                    up.transport.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="udp-delay", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the UDP relay did not start")

    def set_delay(self, up_s: float, down_s: float) -> None:
        self.up_s, self.down_s = up_s, down_s

    def later(self, delay_s: float, fn: object, *args: object) -> None:
        assert self._loop is not None
        self._loop.call_later(delay_s, fn, *args)  # type: ignore[arg-type]

    def forward(self, data: bytes, client: Address) -> None:
        up = self._ups.get(client)
        if up is None:
            if len(self._ups) >= MAX_CLIENTS:
                return
            up = _Upstream(self, client)
            self._ups[client] = up
            assert self._loop is not None
            self._loop.create_task(self._open(up))
        self.later(self.up_s, self._send_up, up, data)

    async def _open(self, up: _Upstream) -> None:
        assert self._loop is not None
        await self._loop.create_datagram_endpoint(lambda: up, remote_addr=self.target)

    def _send_up(self, up: _Upstream, data: bytes, tries: int = 50) -> None:
        if up.transport is not None:
            up.transport.sendto(data)
        elif tries:  # its upstream socket is still opening
            self.later(0.01, self._send_up, up, data, tries - 1)

    def reply(self, data: bytes, client: Address) -> None:
        if self._front is not None:
            self._front.sendto(data, client)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
