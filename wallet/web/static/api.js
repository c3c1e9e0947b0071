// Talking to the wallet API: bearer tokens kept in sessionStorage (never localStorage), problem
// details turned into errors with their machine code, and idempotent POSTs that retry after a
// lost connection with the same Idempotency-Key, so a retry or a double tap never moves money twice.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_error";
    this.problem = problem;
  }
}

// The request never got an answer: the connection was lost, or the server was unreachable.
export class ConnectionLost extends Error {}

export const RETRY_DELAYS_MS = [400, 1200, 3000];

export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A page session (OpenID Connect sign-in, wallet/web/signin.py): the HttpOnly cookie authenticates a
// request sent without a token, and one that changes something carries the session's CSRF token.
let pageSession = null;
export function usePageSession(info) {
  pageSession = info;
}
export function currentPageSession() {
  return pageSession;
}

export class Session {
  constructor(name) {
    this.name = `wallet.${name}`;
  }
  get token() {
    const saved = sessionStorage.getItem(this.name);
    if (!saved) return null;
    try {
      const { token, expiresAt } = JSON.parse(saved);
      if (typeof token === "string" && Date.now() < expiresAt) return token;
    } catch { /* a damaged entry is no session */ }
    sessionStorage.removeItem(this.name);
    return null;
  }
  save(token, expiresInSeconds) {
    const claims = tokenClaims(token);
    const fromClaims = claims && claims.exp ? claims.exp * 1000 : Infinity;
    const expiresAt = Math.min(Date.now() + (expiresInSeconds || 3600) * 1000, fromClaims);
    sessionStorage.setItem(this.name, JSON.stringify({ token, expiresAt }));
  }
  clear() {
    sessionStorage.removeItem(this.name);
  }
}

// The claims of a JWT, read (not verified: the server verifies) to know whose page this is.
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")), (c) => c.charCodeAt(0)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

// One request. Resolves to the decoded JSON body (or null); throws ApiError for a problem and
// ConnectionLost when no answer came.
export async function request(method, path, { token, body, key, raw, contentType, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (pageSession) headers[pageSession.csrf_header] = pageSession.csrf_token;
  if (key) headers["Idempotency-Key"] = key;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    headers["Content-Type"] = contentType;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: token ? "omit" : "same-origin", signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ConnectionLost(String(error));
  }
  let decoded = null;
  const text = await response.text().catch(() => "");
  if (text) {
    try { decoded = JSON.parse(text); } catch { decoded = { detail: text }; }
  }
  if (!response.ok) throw new ApiError(response.status, decoded || {});
  return decoded;
}

// A money-moving POST: every retry after a lost connection carries the same key, so the server
// answers a retry of a request it already carried out with that first outcome.
export async function idempotentPost(path, options, key = newKey()) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await request("POST", path, { ...options, key });
    } catch (error) {
      const retriable = error instanceof ConnectionLost || (error instanceof ApiError && error.status === 503);
      if (!retriable || attempt >= RETRY_DELAYS_MS.length) throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
    }
  }
}

// Keys for a form that moves money: the same request (the same fields) keeps its key until the
// server has answered it, so pressing the button again after a lost answer repeats, not doubles.
export class AttemptKeys {
  constructor() {
    this.fingerprint = null;
    this.key = null;
  }
  keyFor(fields) {
    const fingerprint = JSON.stringify(fields);
    if (fingerprint !== this.fingerprint) {
      this.fingerprint = fingerprint;
      this.key = newKey();
    }
    return this.key;
  }
  answered() {
    this.fingerprint = null;
    this.key = null;
  }
}
