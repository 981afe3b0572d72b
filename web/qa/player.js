// Replay player: the media worker's per-viewer stream (fragmented MP4) into a MediaSource.
// The ticket goes in the Authorization header (never in a URL). A seek outside what is
// buffered starts a new stream from there; reading pauses while enough is buffered, so
// the worker (which renders at most a few seconds ahead) is never asked for more.

const AHEAD_S = 20; // stop reading the stream when this much lies ahead of the playhead

export class ReplayPlayer {
  constructor(video, { streamUrl, ticket, duration, onState }) {
    this.video = video;
    this.streamUrl = streamUrl;
    this.ticket = ticket;
    this.duration = duration;
    this.onState = onState || (() => {});
    this.abort = null;
    this.generation = 0;
    this.sb = null;
    this.ms = null;
    this.stats = { frames: 0, firstFrameAt: null, marks: {} };
    this._onSeeking = () => this._seeking();
  }

  async open(from = 0) {
    this.ms = new MediaSource();
    this.video.src = URL.createObjectURL(this.ms);
    await new Promise((resolve) => this.ms.addEventListener("sourceopen", resolve, { once: true }));
    this.video.addEventListener("seeking", this._onSeeking);
    this._countFrames();
    await this.load(from);
  }

  _countFrames() {
    if (!this.video.requestVideoFrameCallback) return;
    const tick = () => {
      this.stats.frames += 1;
      if (this.stats.firstFrameAt === null) {
        this.stats.firstFrameAt = performance.timeOrigin + performance.now();
        this._mark("first_frame");
      }
      this.video.requestVideoFrameCallback(tick);
    };
    this.video.requestVideoFrameCallback(tick);
  }

  buffered(t) {
    const b = this.video.buffered;
    for (let i = 0; i < b.length; i += 1) {
      if (b.start(i) - 0.05 <= t && t < b.end(i) - 0.2) return true;
    }
    return false;
  }

  _seeking() {
    const t = this.video.currentTime;
    if (this.buffered(t)) return;
    if (this.loading && Math.abs(t - this.target) < 2) return; // that stream is on its way
    this.load(t);
  }

  seek(t) {
    if (this.buffered(t)) {
      this.video.currentTime = t;
    } else {
      this.load(t);
    }
  }

  async _settled() {
    if (this.sb && this.sb.updating) {
      await new Promise((resolve) => this.sb.addEventListener("updateend", resolve, { once: true }));
    }
  }

  async _append(chunk) {
    await this._settled();
    this.sb.appendBuffer(chunk);
    await this._settled();
  }

  _mark(name) {
    if (!(name in this.stats.marks)) this.stats.marks[name] = Math.round(performance.now());
  }

  async load(from) {
    const generation = ++this.generation;
    this.target = from;
    this._mark("load");
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    this.loading = true;
    this.onState("正在加载录像……");
    let resp;
    try {
      resp = await fetch(`${this.streamUrl}?from=${encodeURIComponent(from.toFixed(2))}`, {
        headers: { Authorization: `Bearer ${this.ticket}` }, signal: this.abort.signal,
      });
    } catch (err) {
      if (generation === this.generation) this.onState("无法连接媒体服务，请稍后再试", true);
      return;
    }
    if (!resp.ok) {
      const body = await resp.json().catch(() => null);
      this.onState(body?.error?.message || `回放失败（${resp.status}）`, true);
      return;
    }
    this._mark("headers");
    const start = parseFloat(resp.headers.get("X-Replay-Start") || "0");
    const codecs = resp.headers.get("X-Replay-Codecs") || 'video/mp4; codecs="avc1.42C01F, mp4a.40.2"';
    if (!this.sb) {
      this.sb = this.ms.addSourceBuffer(codecs);
      this.sb.mode = "segments";
      if (this.duration) this.ms.duration = this.duration;
    }
    await this._settled();
    if (this.sb.updating) this.sb.abort();
    if (this.video.buffered.length) {
      this.sb.remove(0, Infinity);
      await this._settled();
    }
    this.sb.timestampOffset = start;
    const reader = resp.body.getReader();
    let started = false;
    const begin = () => {
      started = true;
      this.loading = false;
      const b = this.video.buffered;
      if (b.length && Math.abs(this.video.currentTime - from) > 0.3) {
        this.video.currentTime = Math.min(Math.max(from, b.start(0)), b.end(b.length - 1));
      }
      this.onState("");
      this._mark("play");
      this.video.play().catch(() => {});
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (generation !== this.generation) break;
        if (done) {
          if (!started) begin();
          break;
        }
        this._mark("first_bytes");
        await this._append(value);
        const b = this.video.buffered;
        if (!started && b.length && b.end(b.length - 1) >= from + 0.5) begin();
        while (generation === this.generation && this._ahead() > AHEAD_S) {
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    } catch (err) {
      if (generation === this.generation && err.name !== "AbortError") {
        this.onState("录像传输中断，请点击时间轴重新加载", true);
      }
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  _ahead() {
    const b = this.video.buffered;
    return b.length ? b.end(b.length - 1) - this.video.currentTime : 0;
  }

  stop() {
    this.generation += 1;
    if (this.abort) this.abort.abort();
    this.video.removeEventListener("seeking", this._onSeeking);
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
  }
}

// Seconds actually watched (playing, not paused), reported to signaling now and then.
export class WatchClock {
  constructor(video, report) {
    this.video = video;
    this.report = report;
    this.watched = 0;
    this.last = null;
    this.timer = setInterval(() => this.flush(false), 10000);
    video.addEventListener("timeupdate", () => this._tick());
    video.addEventListener("pause", () => { this.last = null; });
  }

  _tick() {
    const now = performance.now();
    if (!this.video.paused && this.last !== null) this.watched += Math.min(1, (now - this.last) / 1000);
    this.last = this.video.paused ? null : now;
  }

  flush(ended) {
    if (ended) clearInterval(this.timer);
    this.report(Math.round(this.watched * 10) / 10, ended);
  }
}
