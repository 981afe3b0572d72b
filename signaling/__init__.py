"""Signaling: aiohttp HTTP + WebSocket server (auth, queue and routing, call set-up, REST)."""
