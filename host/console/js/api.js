// Calls to /api/v1 with the session's token; every failure becomes an ApiError carrying the
// server's own message (the API answers errors as {"error": {"code", "message"}}).

import { currentSession, endSession } from "./session.js";

/** An API failure: `status`, the API's `code`, and a message fit to show. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Fired on `window` when the API refuses the token (expired or revoked). */
export const SESSION_ENDED = "crmhost:session-ended";

/** `method path [body]` → the parsed JSON answer (null for an empty one). */
export async function api(method, path, body) {
  const session = currentSession();
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "crmhost could not be reached. Check your connection and try again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    endSession();
    window.dispatchEvent(new CustomEvent(SESSION_ENDED));
    throw new ApiError(401, "unauthorized", "Your session has ended. Sign in again from your app.");
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code ?? `http_${response.status}`,
      error.message ?? `crmhost answered ${response.status} ${response.statusText}.`);
  }
  return data;
}

/** A path under the session's workspace: `ws("/integrations")`. */
export function ws(rest) {
  const session = currentSession();
  return `/api/v1/workspaces/${encodeURIComponent(session?.workspace ?? "")}${rest}`;
}

/** A path under one of the workspace's integrations. */
export function integration(slug, rest = "") {
  return ws(`/integrations/${encodeURIComponent(slug)}${rest}`);
}
