// The client's page: log in by phone and SMS code, balances per service line kept live from the
// event stream, charges to approve or decline, history, and the monthly statement.
//
// Whose wallet is shown is `state.subject`; every wallet request goes through `walletPath`, so a
// representative's switcher (acting for several clients) only has to change the subject.

import { ApiError, ConnectionLost, Session, currentPageSession, idempotentPost, newKey, request, tokenClaims, usePageSession } from "./api.js";
import { $, el, fill, localDate, localDateTime, onSubmit, say, show, thisMonth } from "./dom.js";
import { categoryName, language, problemText, setUp, t } from "./i18n.js";
import { formatEuros } from "./money.js";
import { endPageSession, resumePageSession, signInOptions } from "./signin.js";

const RECONNECT_MS = 3000;
const REFRESH_DEBOUNCE_MS = 150;
const HISTORY_PAGE = 20;
const session = new Session("client");
const state = {
  subject: null, // { clientId, name, represented, scope }: whose wallet, and how far this login may act
  mandates: [], // a representative's: the clients they act for
  wallet: null,
  categories: new Map(),
  stream: null, // AbortController of the open event stream
  lastEventId: null,
  history: [],
  historyCursor: null,
  refreshTimer: null,
  loginPhone: null,
  smsLogin: true, // the organizer may turn the SMS sign-in off (WALLET_SMS_LOGIN)
};

const euros = (cents, options) => formatEuros(cents, language(), options);
// The subject's wallet: a representative names the client acted for on every request.
function walletPath(rest) {
  if (!state.subject || !state.subject.represented) return `/v1/me${rest}`;
  return `/v1/me${rest}${rest.includes("?") ? "&" : "?"}client_id=${encodeURIComponent(state.subject.clientId)}`;
}

function token() {
  if (currentPageSession()) return null; // signed in through the broker: the session cookie speaks
  const current = session.token;
  if (!current) {
    signedOut("common.session_expired");
    throw new ApiError(401, { code: "unauthorized", detail: "signed out" });
  }
  return current;
}

function signedOut(messageKey) {
  session.clear();
  usePageSession(null);
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.subject = null;
  state.mandates = [];
  state.wallet = null;
  show($("#wallet"), false);
  show($("#login"));
  show($("#phone-form"), state.smsLogin);
  show($("#login-code-form"), false);
  say($("#login-message"), messageKey ? t(messageKey) : "", "error");
}

// Logging in.

async function sendCode(form) {
  const phone = form.get("phone").trim();
  if (!phone) {
    say($("#login-message"), t("client.login.need_phone"), "error");
    return;
  }
  try {
    await request("POST", "/v1/login", { body: { phone } });
  } catch (error) {
    say($("#login-message"), problemText(error), "error");
    return;
  }
  state.loginPhone = phone;
  say($("#login-message"), "");
  show($("#phone-form"), false);
  show($("#login-code-form"));
  $("#login-code").focus();
}

async function verifyCode(form) {
  const code = form.get("code").trim();
  if (!/^\d{6}$/.test(code)) {
    say($("#login-message"), t("client.login.bad_code"), "error");
    return;
  }
  try {
    const issued = await request("POST", "/v1/login/verify", { body: { phone: state.loginPhone, code } });
    session.save(issued.access_token, issued.expires_in);
  } catch (error) {
    say($("#login-message"), error instanceof ApiError && error.code === "identity_check_failed" ? t("client.login.wrong_code") : problemText(error), "error");
    return;
  }
  $("#login-code").value = "";
  say($("#login-message"), "");
  await open();
  $("#main").focus();
}

// The wallet.

async function open() {
  const claims = currentPageSession() || tokenClaims(token());
  if (!claims || !["client", "representative"].includes(claims.role)) {
    signedOut("client.login.wrong_role");
    return;
  }
  if (claims.role === "representative") {
    const mandates = await request("GET", "/v1/me/mandates", { token: token() });
    state.mandates = mandates.data;
    if (!state.mandates.length) {
      signedOut("client.subject.none");
      return;
    }
    const chosen = state.mandates.find((m) => m.client_id === claims.client_id) || state.mandates[0];
    state.subject = { clientId: chosen.client_id, name: chosen.client_name, represented: true, scope: chosen.scope };
  } else {
    state.mandates = [];
    state.subject = { clientId: claims.client_id, name: null, represented: false, scope: "manage" };
  }
  renderSwitcher();
  show($("#login"), false);
  show($("#wallet"));
  $("#statement-month").value = thisMonth();
  try {
    const categories = await request("GET", "/v1/categories", { token: token() });
    state.categories = new Map(categories.data.map((c) => [c.code, c.name]));
  } catch { /* names are a nicety: codes stand in */ }
  await loadSubject();
}

// Everything shown is the subject's: (re)load it all and follow its event stream.
async function loadSubject() {
  state.wallet = null;
  state.lastEventId = null;
  state.history = [];
  $("#statement-result").replaceChildren();
  // client-documents.js lists this subject's decisions.
  document.dispatchEvent(new CustomEvent("wallet:subject", { detail: { ...state.subject } }));
  await Promise.all([loadWallet(), loadPending(), loadHistory(true)]);
  connect();
}

// A representative chooses whose wallet to see (every mandate's client is in the list).
function renderSwitcher() {
  const box = $("#subject-switcher");
  if (!state.subject.represented) {
    box.replaceChildren();
    show(box, false);
    return;
  }
  const select = el("select", { id: "subject", name: "subject" },
    state.mandates.map((m) => el("option", { value: m.client_id, text: m.client_name })));
  select.value = state.subject.clientId;
  select.addEventListener("change", () => {
    const mandate = state.mandates.find((m) => m.client_id === select.value);
    state.subject = { clientId: mandate.client_id, name: mandate.client_name, represented: true, scope: mandate.scope };
    renderSwitcher();
    $("#subject").focus();
    say($("#flash"), t("client.subject.switched", { name: mandate.client_name }), "info");
    loadSubject();
  });
  box.replaceChildren(
    el("label", { for: "subject", text: t("client.subject.label") }),
    select,
    el("p", { class: "help", text: t(state.subject.scope === "manage" ? "client.subject.manage" : "client.subject.view") }));
  show(box);
}

async function loadWallet() {
  const subject = state.subject;
  try {
    const wallet = await request("GET", walletPath("/wallet"), { token: token() });
    if (subject === state.subject) renderWallet(wallet);  // not an answer about a wallet switched away from
  } catch (error) {
    failed(error);
  }
}

function renderWallet(wallet) {
  state.wallet = wallet;
  const lines = wallet.lines || [];
  $("#total").textContent = t("client.balances.total", { available: euros(wallet.available) });
  $("#lines").replaceChildren(...lines.map(lineCard));
  show($("#no-lines"), lines.length === 0);
  document.dispatchEvent(new CustomEvent("wallet:rendered", { detail: wallet }));  // client-chart.js draws it
}

function lineCard(line) {
  const name = categoryName(line.category, state.categories);
  const headingId = `line-${line.category}`;
  return el("li", { class: "line", "aria-labelledby": headingId, dataset: { category: line.category } },
    el("h3", { id: headingId, text: name }),
    el("p", { class: "left", dataset: { role: "available" }, text: euros(line.available) }),
    el("p", { text: t("client.balances.left") }),
    el("p", { text: t("client.balances.monthly", { amount: euros(line.monthly_amount) }) }),
    line.held ? el("p", { text: t("client.balances.held", { amount: euros(line.held) }) }) : null);
}

// An event changes one line: show its new figures at once, then fetch the rest behind it.
function applyEvent(event) {
  if (state.wallet && event.category) {
    const line = state.wallet.lines.find((candidate) => candidate.category === event.category);
    if (line && typeof event.line_balance === "number") {
      line.balance = event.line_balance;
      line.available = event.line_available;
      line.held = event.line_balance - event.line_available;
      state.wallet.balance = event.balance;
      state.wallet.available = event.available;
      renderWallet(state.wallet);
    }
  }
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    loadWallet();
    loadPending();
    loadHistory(true);
  }, REFRESH_DEBOUNCE_MS);
}

// The live stream, read with fetch (EventSource cannot send the Authorization header).
async function connect() {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  while (!controller.signal.aborted && (session.token || currentPageSession())) {
    try {
      const cookie = Boolean(currentPageSession());
      const headers = { Accept: "text/event-stream" };
      if (!cookie) headers.Authorization = `Bearer ${token()}`;
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch(walletPath("/events"), { headers, signal: controller.signal, cache: "no-store", credentials: cookie ? "same-origin" : "omit" });
      if (response.status === 401) {
        signedOut("common.session_expired");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      liveStatus(true);
      await readEvents(response.body, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    liveStatus(false);
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let boundary;
    while ((boundary = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, "");
      dispatch(block);
    }
  }
}

function dispatch(block) {
  let name = "message";
  let id = null;
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  if (id) state.lastEventId = id;
  let payload;
  try { payload = JSON.parse(data.join("\n")); } catch { return; }
  if (name === "wallet") renderWallet(payload);
  else applyEvent(payload);
}

function liveStatus(connected) {
  $("#live").textContent = connected ? t("client.live.on") : t("client.live.off");
  $("#live").dataset.connected = String(connected);
}

// Charges waiting for the client's answer.

async function loadPending() {
  const subject = state.subject;
  let page;
  try {
    page = await request("GET", walletPath("/charges?status=pending"), { token: token() });
  } catch (error) {
    failed(error);
    return;
  }
  if (subject !== state.subject) return;
  const list = $("#pending-list");
  const waiting = page.data.filter((charge) => charge.method === "app");
  list.replaceChildren(...waiting.map(pendingCard));
  show($("#pending"), waiting.length > 0);
}

function pendingCard(charge) {
  const headingId = `pending-${charge.id}`;
  const describe = t("client.pending.what", {
    provider: charge.provider_name, amount: euros(charge.amount), service: categoryName(charge.category, state.categories),
  });
  return el("div", { class: "pending-charge", role: "group", "aria-labelledby": headingId, dataset: { chargeId: charge.id } },
    el("h3", { id: headingId, text: describe }),
    charge.description ? el("p", { text: charge.description }) : null,
    el("p", { text: t("client.pending.until", { time: localDateTime(charge.expires_at, language()) }) }),
    state.subject.scope !== "manage" ? el("p", { text: t("client.pending.view_only") }) : el("div", { class: "actions" },
      el("button", { type: "button", text: t("client.pending.approve"), "aria-label": `${t("client.pending.approve")}: ${describe}`,
        onclick: (event) => answer(charge, true, event.currentTarget) }),
      el("button", { type: "button", class: "secondary", text: t("client.pending.decline"), "aria-label": `${t("client.pending.decline")}: ${describe}`,
        onclick: (event) => answer(charge, false, event.currentTarget) })));
}

async function answer(charge, approve, button) {
  for (const other of button.parentElement.querySelectorAll("button")) other.disabled = true;
  const verb = approve ? "approve" : "decline";
  try {
    await idempotentPost(walletPath(`/charges/${encodeURIComponent(charge.id)}/${verb}`), { token: token() }, newKey());
    say($("#flash"), t(approve ? "client.pending.approved" : "client.pending.declined", { amount: euros(charge.amount) }), "ok");
  } catch (error) {
    say($("#flash"), error instanceof ApiError && error.code === "conflict" ? t("client.pending.too_late") : problemText(error), "error");
  }
  await Promise.all([loadPending(), loadWallet(), loadHistory(true)]);
}

// History.

const TYPE_KEYS = { credit: "client.type.credit", expiry: "client.type.expiry", capture: "client.type.capture", refund: "client.type.refund" };

async function loadHistory(fromStart) {
  const cursor = fromStart ? "" : `&cursor=${encodeURIComponent(state.historyCursor)}`;
  const subject = state.subject;
  let page;
  try {
    page = await request("GET", walletPath(`/transactions?limit=${HISTORY_PAGE}${cursor}`), { token: token() });
  } catch (error) {
    failed(error);
    return;
  }
  if (subject !== state.subject) return;
  state.history = fromStart ? page.data : state.history.concat(page.data);
  state.historyCursor = page.next_cursor;
  renderHistory();
}

function renderHistory() {
  $("#history-table tbody").replaceChildren(...state.history.map((entry) => {
    let what = t(TYPE_KEYS[entry.type] || entry.type);
    if (entry.provider_name) what += `: ${entry.provider_name}`;
    return el("tr", {},
      el("td", { text: localDate(entry.created_at, language()) }),
      el("td", {}, what, el("br"), el("span", { class: "help", text: categoryName(entry.category, state.categories) })),
      el("td", { class: "number", text: euros(entry.amount, { signed: true }) }));
  }));
  show($("#history-table"), state.history.length > 0);
  show($("#history-empty"), state.history.length === 0);
  show($("#history-more"), Boolean(state.historyCursor));
}

// The monthly statement.

async function showStatement(form) {
  const month = form.get("month");
  const box = $("#statement-result");
  if (!/^\d{4}-\d{2}$/.test(month)) {
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: t("client.statement.bad_month") }));
    return;
  }
  let statement;
  try {
    statement = await request("GET", walletPath(`/statements/${month}`), { token: token() });
  } catch (error) {
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: problemText(error) }));
    return;
  }
  const row = (key, amount, total = false) => [
    el("dt", { class: total ? "total" : null, text: t(key) }),
    el("dd", { class: total ? "total" : null, text: euros(amount) }),
  ];
  const byProvider = (statement.charges.by_provider || []).map((entry) => el("li", {
    text: `${entry.provider_name}, ${categoryName(entry.category, state.categories)}: ${euros(entry.amount)} (${t("client.statement.count", { count: entry.count })})`,
  }));
  fill(box,
    el("h3", { text: t(statement.complete ? "client.statement.for" : "client.statement.so_far", { month: monthName(month) }) }),
    el("dl", { class: "figures" },
      row("client.statement.opening", statement.opening_balance),
      row("client.statement.credits", statement.credits.amount),
      row("client.statement.charges", -statement.charges.amount),
      row("client.statement.refunds", statement.refunds.amount),
      row("client.statement.expiry", -statement.expiry.amount),
      row("client.statement.closing", statement.closing_balance, true)),
    byProvider.length ? el("h3", { text: t("client.statement.services") }) : null,
    byProvider.length ? el("ul", {}, byProvider) : null,
    statement.held_at_close ? el("p", { text: t("client.statement.held", { amount: euros(statement.held_at_close) }) }) : null);
}

function monthName(month) {
  const [year, number] = month.split("-").map(Number);
  const locale = { fi: "fi-FI", sv: "sv-FI", en: "en-GB" }[language()];
  return new Date(year, number - 1, 1).toLocaleDateString(locale, { month: "long", year: "numeric" });
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) signedOut("common.session_expired");
  else say($("#flash"), problemText(error), "error");
}

setUp(() => {
  if (state.subject) renderSwitcher();
  if (!state.wallet) return;
  renderWallet(state.wallet);
  renderHistory();
  loadPending();
  liveStatus($("#live").dataset.connected === "true");
});
onSubmit($("#phone-form"), sendCode);
onSubmit($("#login-code-form"), verifyCode);
onSubmit($("#statement-form"), showStatement);
$("#login-restart").addEventListener("click", () => {
  show($("#login-code-form"), false);
  show($("#phone-form"));
  $("#login-phone").focus();
});
$("#history-more").addEventListener("click", () => loadHistory(false));
$("#signout").addEventListener("click", async () => {
  if (currentPageSession()) await endPageSession(); // then on to the broker's sign-out, if it has one
  signedOut();
  $("#login-phone").focus();
});

// A page session from the broker first, then a token from the SMS sign-in, else the sign-in.
async function start() {
  const options = await signInOptions();
  state.smsLogin = options.sms_login;
  show($("#strong-signin"), options.client_signin);
  show($("#sms-or"), options.client_signin && options.sms_login);
  if ((await resumePageSession("client")) || session.token) return open();
  signedOut();
}
start().catch((error) => failed(error));
