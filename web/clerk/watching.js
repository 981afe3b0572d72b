// 监看: while a supervisor watches the call, the clerk sees who (「有人监看：…」) at the top
// of the call. A separate module: the console hands it every signaling message as a
// "signal:message" event on the document; it reads only `call_watching` and the call's end.

let callId = null;

function banner() {
  let el = document.getElementById("watching");
  if (!el) {
    el = document.createElement("p");
    el.id = "watching";
    el.className = "banner watching";
    el.setAttribute("role", "status");
    el.hidden = true;
    const call = document.getElementById("call");
    if (call) call.prepend(el); else document.body.prepend(el);
  }
  return el;
}

function show(names) {
  const el = banner();
  el.textContent = names.length ? `有人监看：${names.join("、")}` : "";
  el.hidden = !names.length;
}

document.addEventListener("signal:message", (ev) => {
  const msg = ev.detail || {};
  if (msg.type === "call_watching") {
    callId = msg.call_id;
    show(msg.watchers || []);
  } else if ((msg.type === "call_ended" && msg.call_id === callId)
             || (msg.type === "call_assigned" && msg.call_id !== callId)) {
    callId = null;
    show([]);  // a watch ends with its call; a new call starts unwatched
  }
});
