// Kiosk enrolment and its session: the device credential lives in an HttpOnly cookie the
// page never sees. First visit: the village staff type (or scan) the one-time code the
// administrator gave them. The old `?token=` URL works only on a `make run` stack.

import { api, plain, PlainError } from "/web/common/api.js";

const $ = (id) => document.getElementById(id);

// Resolves once the kiosk has a session; shows the enrolment screen until then.
export async function kioskSession(show) {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  try {
    await api("/api/terminal/session", { method: "POST", body: token ? { token } : {} });
    if (token) {  // the credential is in the cookie now: out of the address bar
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
    }
    return true;
  } catch (err) {
    if (!(err instanceof PlainError) || ![401, 403].includes(err.status)) throw err;
  }
  return enrol(show);
}

function enrol(show) {
  show("login");
  $("enrol-code").focus();
  return new Promise((resolve) => {
    $("enrol-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("enrol-error").textContent = "";
      try {
        await api("/api/terminal/enrol", { method: "POST", body: { code: $("enrol-code").value.trim() } });
        $("enrol-code").value = "";
        resolve(true);
      } catch (err) {
        $("enrol-error").textContent = plain(err);
      }
    });
  });
}

// 退出登录 (village staff): ends this kiosk session; the device stays enrolled.
export async function logout() {
  try { await api("/api/logout", { method: "POST" }); } catch { /* the page reloads anyway */ }
  location.replace(location.pathname);
}
