// How a page section in a module of its own speaks for whoever is signed in on the page: a token
// the page keeps in this tab's sessionStorage (api.js `Session`), or, where api.js has one, the
// page's signed-in session (a cookie the browser sends; then no token). Read through the module
// namespace, so a page without page sessions works the same.

import * as api from "./api.js";

function pageSession() {
  return typeof api.currentPageSession === "function" ? api.currentPageSession() : null;
}

// A token of one of `roles`; null when the page's session is one of them; 401 when neither.
export function tokenFor(...roles) {
  const session = pageSession();
  if (session && roles.includes(session.role)) return null;
  for (const role of roles) {
    const token = new api.Session(role).token;
    if (token) return token;
  }
  throw new api.ApiError(401, { code: "unauthorized", detail: "signed out" });
}

export function signedInAs(...roles) {
  try {
    tokenFor(...roles);
    return true;
  } catch {
    return false;
  }
}

// A file to save: fetched as the signed-in party (its token, or the page's session cookie).
export async function fetchFile(path, token) {
  return fetch(path, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    cache: "no-store",
    credentials: token ? "omit" : "same-origin",
  });
}
