// The signaling WebSocket with reconnect and backoff; the server sends a snapshot on connect.

export class Signal {
  constructor(onMessage, onState = () => {}) {
    this.onMessage = onMessage;
    this.onState = onState;  // "open" | "lost" | "ended" (session over: stop, log in again)
    this.ws = null;
    this.attempt = 0;
    this.closed = false;
    this.seq = 0;
  }

  connect() {
    this.closed = false;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => { this.attempt = 0; this.onState("open"); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      if (ev.code === 4401) {  // the session was ended (logout elsewhere, revoked): log in again
        this.closed = true;
        this.onState("ended");
        return;
      }
      this.onState("lost");
      // 0.5 s, 1 s, 2 s ... at most 5 s: well inside the 30 s the server keeps the place.
      const delay = Math.min(5000, 500 * 2 ** this.attempt++);
      setTimeout(() => { if (!this.closed) this.connect(); }, delay);
    };
  }

  send(type, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type, id: `m${++this.seq}`, ...fields }));
    return true;
  }

  get open() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
    this.ws = null;
  }
}
