// Same-origin JSON calls; failures become Error objects whose message is plain Chinese.

export class PlainError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method, credentials: "same-origin",
      headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new PlainError("网络连接中断，请稍后再试");
  }
  return readJson(resp);
}

export async function readJson(resp) {
  const isJson = (resp.headers.get("Content-Type") || "").includes("json");
  const data = isJson ? await resp.json().catch(() => null) : null;
  if (!resp.ok) {
    throw new PlainError(data?.error?.message || `操作没有成功（${resp.status}），请稍后再试`,
      resp.status, data?.error?.code || "");
  }
  return data;
}

// Any thrown value to words a person understands (never a stack trace).
export function plain(err) {
  return err instanceof PlainError ? err.message : "出了点问题，请稍后再试";
}
