// Certificates at the kiosk: the start screen only says how many are ready. To show and
// print one, the applicant proves it is theirs (the slip's case number and the last four
// characters of the ID number, or the slip's QR code scanned into the same field), or the
// village staff open them all with their PIN. The server decides; this page only asks.

import { api, plain } from "/web/common/api.js";
import { logout } from "/web/terminal/enrol.js";

const $ = (id) => document.getElementById(id);

export class Certificates {
  constructor(show, goHome, showError) {
    this.show = show;
    this.goHome = goHome;
    this.showError = showError;
    this.ready = 0;
    this.announced = new Set();  // certified cases the server told this kiosk of (not shown)
    $("certs-open").addEventListener("click", () => this.open());
    $("slip-form").addEventListener("submit", (ev) => this.prove(ev, "/api/terminal/claim", {
      slip: $("proof-slip").value.trim(), id_last4: $("proof-last4").value.trim() || null }));
    $("pin-form").addEventListener("submit", (ev) => this.prove(ev, "/api/terminal/unlock", {
      pin: $("proof-pin").value.trim() }));
    $("certs-done").addEventListener("click", () => this.close());
    $("kiosk-logout").addEventListener("click", logout);
  }

  render() {
    $("certs").hidden = this.ready === 0;
    const li = document.createElement("li");
    li.textContent = `有 ${this.ready} 件证照已经办好，请打印证照`;
    $("cert-list").replaceChildren(li);
  }

  async load() {
    try {
      const ready = (await api("/api/terminal/cases")).ready || 0;
      this.ready = Math.max(ready, this.announced.size);
      this.render();
    } catch { /* a convenience: the case_result message brings new ones */ }
  }

  caseResult(msg) {
    if (!msg.certificate_no) return;
    this.announced.add(msg.case_no);  // the count, never the case number, is shown
    this.ready = Math.max(this.ready, this.announced.size);
    this.render();
    this.load();
  }

  open() {
    for (const id of ["proof-slip", "proof-last4", "proof-pin"]) $(id).value = "";
    $("proof-error").textContent = "";
    $("cert-ready").replaceChildren();
    $("kiosk-logout").hidden = true;
    this.show("certs");
    $("proof-slip").focus();
  }

  async prove(ev, path, body) {
    ev.preventDefault();
    $("proof-error").textContent = "";
    try {
      const res = await api(path, { method: "POST", body });
      $("kiosk-logout").hidden = !res.staff;
      this.list(res.cases.filter((c) => c.status === "certified" && c.certificate_no));
    } catch (err) { $("proof-error").textContent = plain(err); }
  }

  list(cases) {
    if (!cases.length) { $("proof-error").textContent = "这件事还没有可以打印的证照"; return; }
    $("cert-ready").replaceChildren(...cases.map((c) => {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `${c.item_name}（办件 ${c.case_no}）`;
      const b = document.createElement("button");
      b.className = "btn primary";
      b.textContent = "打印证照";
      b.addEventListener("click", () => this.print(c.certificate_no, li));
      li.append(text, b);
      return li;
    }));
  }

  async print(number, li) {
    window.open(`/api/certificates/${encodeURIComponent(number)}.pdf`, "_blank");
    try {
      await api(`/api/certificates/${encodeURIComponent(number)}/printed`, { method: "POST" });
      li.remove();
      this.announced.clear();
      this.load();
    } catch (err) { this.showError(plain(err)); }
  }

  async close() {
    try { await api("/api/terminal/lock", { method: "POST" }); } catch { /* it expires */ }
    this.goHome();
  }
}
