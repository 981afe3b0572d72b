// The clerk's own figures for today (calls, average handle time, satisfaction), under the
// header; refreshed when the console returns to idle and every minute. A
// separate module: it reads only the console's body[data-state].

let last = "";

function words(f) {
  const aht = f.aht_s == null ? "–" : `${Math.floor(f.aht_s / 60)} 分 ${Math.round(f.aht_s % 60)} 秒`;
  const sat = f.ratings ? `${Math.round(f.satisfied_share * 100)}%（${f.ratings} 条评价）` : "暂无评价";
  return `今日：接听 ${f.calls} 次 · 平均处理 ${aht} · 满意度 ${sat}`;
}

async function refresh() {
  if (document.getElementById("status-box")?.hidden !== false) return;
  try {
    const resp = await fetch("/api/clerk/today", { credentials: "same-origin" });
    if (!resp.ok) return;
    let box = document.getElementById("today");
    if (!box) {
      box = document.createElement("div");
      box.id = "today";
      box.className = "today";
      document.querySelector("header.top")?.after(box);
    }
    box.textContent = words(await resp.json());
  } catch { /* the figures are a help, not the work: try again later */ }
}

new MutationObserver(() => {
  const s = document.body.dataset.state;
  if (s !== last) {
    last = s;
    if (s === "idle") refresh();
  }
}).observe(document.body, { attributes: true, attributeFilter: ["data-state"] });
setInterval(refresh, 60000);
