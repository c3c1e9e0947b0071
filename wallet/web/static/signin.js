// Sign-in through the organizer's identity providers (wallet/web/signin.py): what this service
// offers, resuming a page session (the HttpOnly cookie; this module only ever sees its CSRF token),
// and signing out here and at the provider.

import { ApiError, request, usePageSession } from "./api.js";

const OFF = { client_signin: false, staff_signin: false, sms_login: true, admin_token_form: true };

export async function signInOptions() {
  try {
    return { ...OFF, ...(await request("GET", "/v1/auth/options")) };
  } catch {
    return OFF;
  }
}

// The page session of this audience ("client" or "staff"), if the browser holds one; null if not.
export async function resumePageSession(audience) {
  try {
    const info = await request("GET", "/v1/auth/session");
    if (info.audience !== audience) return null;
    usePageSession(info);
    return info;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

// End the session here, then at the identity provider (it sends the browser back to the page).
export async function endPageSession() {
  try {
    const answer = await request("POST", "/v1/auth/logout");
    usePageSession(null);
    if (answer && answer.logout_url) location.assign(answer.logout_url);
  } catch {
    usePageSession(null);
  }
}
