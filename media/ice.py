"""ICE configuration: the explicit RTCConfiguration and the host addresses announced.

aiortc's default configuration reaches a public STUN server, so every peer connection
here gets an explicit one built from settings. aioice never announces 127.0.0.1 on its
own; `announce_host_addresses` makes it announce exactly the configured addresses.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from core.messages import IceServer


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    """Always explicit (possibly empty), never aiortc's public STUN default.

    max-bundle: with aiortc's default (balanced) a second m-line of a kind created while
    answering keeps a stale transport and never sends.
    """
    return RTCConfiguration(
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in servers
        ]
    )


def announce_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice gather host candidates on exactly these addresses (process-wide)."""
    fixed = list(addresses)
    if not fixed:
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
