// The point of service: sign in with the provider's client credentials, charge, confirm, void,
// refund, and request a settlement with its invoicing reference.

import { ApiError, AttemptKeys, ConnectionLost, Session, idempotentPost, newKey, request, tokenClaims } from "./api.js";
import { $, el, fill, labelCells, localDate, localTime, isToday, onSubmit, say, show } from "./dom.js";
import { categoryName, language, problemText, setUp, t } from "./i18n.js";
import { finvoice, finvoiceFileName, saveFile } from "./finvoice.js";
import { formatEuros, parseEuros } from "./money.js";

const APPROVAL_POLL_MS = 1500;
const session = new Session("provider");
const chargeKeys = new AttemptKeys();
const state = { provider: null, categories: new Map(), pending: null, watching: 0 };

const euros = (cents) => formatEuros(cents, language());

function token() {
  const current = session.token;
  if (!current) {
    signedOut();
    throw new ApiError(401, { code: "unauthorized", detail: "signed out" });
  }
  return current;
}

function signedOut(messageKey) {
  session.clear();
  state.provider = null;
  show($("#signed-in"), false);
  show($("#signin"));
  if (messageKey) say($("#signin-message"), t(messageKey), "error");
}

async function signIn(form) {
  const message = $("#signin-message");
  say(message, "");
  const clientId = form.get("client_id").trim();
  const clientSecret = form.get("client_secret");
  if (!clientId || !clientSecret) {
    say(message, t("provider.signin.missing"), "error");
    return;
  }
  try {
    const issued = await request("POST", "/v1/token", {
      body: { grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret },
    });
    session.save(issued.access_token, issued.expires_in);
    $("#client-secret").value = "";
    await open();
  } catch (error) {
    say(message, error instanceof ApiError && error.status === 401 ? t("provider.signin.wrong") : problemText(error), "error");
  }
}

async function open() {
  const claims = tokenClaims(token());
  if (!claims || claims.role !== "provider") {
    signedOut("provider.signin.wrong_role");
    return;
  }
  const [provider, categories] = await Promise.all([
    request("GET", `/v1/providers/${encodeURIComponent(claims.provider_id)}`, { token: token() }),
    request("GET", "/v1/categories", { token: token() }),
  ]);
  state.provider = provider;
  state.categories = new Map(categories.data.map((c) => [c.code, c.name]));
  $("#provider-name").textContent = provider.name;
  const select = $("#category");
  select.replaceChildren(...provider.categories.map((code) => el("option", { value: code, text: categoryName(code, state.categories) })));
  show($("#signin"), false);
  show($("#signed-in"));
  if (provider.status !== "approved") say($("#flash"), t("provider.not_approved"), "error");
  await Promise.all([refreshToday(), loadSettlements()]);
}

function chargeFields(form) {
  const method = form.get("method");
  const amount = parseEuros(form.get("amount"));
  const fields = {
    phone: form.get("phone").trim(),
    amount,
    category: form.get("category"),
    identity: method === "national_id" ? { method, national_id: form.get("national_id").trim().toUpperCase() } : { method },
  };
  const description = form.get("description").trim();
  if (description) fields.description = description;
  return fields;
}

function outcome(text, kind) {
  const box = $("#outcome");
  box.replaceChildren(el("p", { class: `outcome-${kind}`, text }));
  box.className = `outcome outcome-box-${kind}`;
  show(box);
}

async function charge(form) {
  show($("#outcome"), false);
  const fields = chargeFields(form);
  const missing = !fields.phone ? ["provider.charge.need_phone", "#phone"]
    : fields.amount === null || fields.amount <= 0 ? ["provider.charge.bad_amount", "#amount"]
    : fields.identity.method === "national_id" && !fields.identity.national_id ? ["provider.charge.need_national_id", "#national-id"]
    : null;
  if (missing) {
    outcome(t(missing[0]), "error");
    $(missing[1]).focus();
    return;
  }
  const key = chargeKeys.keyFor(fields);
  outcome(t("provider.charge.sending"), "info");
  let result;
  try {
    result = await idempotentPost("/v1/charges", { token: token(), body: fields }, key);
  } catch (error) {
    if (error instanceof ConnectionLost) {
      outcome(t("provider.charge.connection_lost"), "error");  // the key is kept: pressing again repeats
      return;
    }
    chargeKeys.answered();
    outcome(chargeProblem(error), "error");
    return;
  }
  chargeKeys.answered();
  $("#amount").value = "";
  $("#national-id").value = "";
  if (result.status === "captured") {
    outcome(t("provider.outcome.captured", { amount: euros(result.amount ?? fields.amount) }), "ok");
  } else if (fields.identity.method === "otp") {
    state.pending = { id: result.id, amount: fields.amount };
    show($("#charge-form"), false);
    show($("#code-form"));
    outcome(t("provider.outcome.code_sent", { amount: euros(fields.amount) }), "info");
    $("#code").focus();
  } else {
    state.pending = { id: result.id, amount: fields.amount };
    outcome(t("provider.outcome.waiting_app", { amount: euros(fields.amount) }), "info");
    watchApproval(result.id, fields.amount);
  }
  await refreshToday();
}

function chargeProblem(error) {
  if (!(error instanceof ApiError)) return problemText(error);
  if (error.code === "insufficient_funds") {
    const available = error.problem.available;
    return typeof available === "number"
      ? t("provider.outcome.insufficient_with", { available: euros(available) })
      : t("provider.outcome.insufficient");
  }
  if (error.code === "not_found" && error.problem.field === "phone") return t("provider.outcome.no_wallet");
  if (error.status === 401) signedOut("common.session_expired");
  return problemText(error);
}

async function confirmCode(form) {
  const code = form.get("code").trim();
  if (!/^\d{6}$/.test(code)) {
    outcome(t("provider.code.bad_format"), "error");
    $("#code").focus();
    return;
  }
  const pending = state.pending;
  try {
    await idempotentPost(`/v1/charges/${encodeURIComponent(pending.id)}/confirm`, { token: token(), body: { code } }, newKey());
    outcome(t("provider.outcome.captured", { amount: euros(pending.amount) }), "ok");
    endCode();
  } catch (error) {
    if (error instanceof ApiError && error.code === "identity_check_failed" && error.problem.charge_status === "pending") {
      outcome(t("provider.outcome.wrong_code", { left: error.problem.attempts_left ?? "?" }), "error");
      $("#code").select();
      return;
    }
    outcome(error instanceof ApiError && error.code === "identity_check_failed" ? t("provider.outcome.identity_failed_voided") : chargeProblem(error), "error");
    if (!(error instanceof ConnectionLost)) endCode();
  }
  await refreshToday();
}

function endCode() {
  state.pending = null;
  $("#code").value = "";
  show($("#code-form"), false);
  show($("#charge-form"));
}

async function cancelPending() {
  const pending = state.pending;
  if (!pending) return;
  try {
    await idempotentPost(`/v1/charges/${encodeURIComponent(pending.id)}/void`, { token: token() }, newKey());
    outcome(t("provider.outcome.voided"), "info");
  } catch (error) {
    outcome(problemText(error), "error");
  }
  endCode();
  await refreshToday();
}

// A charge approved in the client's app: look until the client answers or the request lapses.
async function watchApproval(chargeId, amount) {
  const watch = ++state.watching;
  while (watch === state.watching && session.token) {
    await new Promise((resolve) => setTimeout(resolve, APPROVAL_POLL_MS));
    if (watch !== state.watching) return;
    let current;
    try {
      current = await request("GET", `/v1/charges/${encodeURIComponent(chargeId)}`, { token: token() });
    } catch (error) {
      if (error instanceof ConnectionLost) continue;
      return;
    }
    if (current.status === "captured") {
      outcome(t("provider.outcome.approved", { amount: euros(amount) }), "ok");
      break;
    }
    if (current.status === "voided") {
      outcome(t(current.void_reason === "expired" ? "provider.outcome.expired" : "provider.outcome.declined"), "error");
      break;
    }
  }
  state.pending = null;
  await refreshToday();
}

const STATUS_KEYS = { captured: "status.captured", pending: "status.pending", voided: "status.voided" };

async function refreshToday() {
  if (!session.token) return;
  let page;
  try {
    page = await request("GET", "/v1/charges?limit=200", { token: token() });
  } catch (error) {
    say($("#today-message"), problemText(error), "error");
    return;
  }
  const rows = page.data.filter((charge) => isToday(charge.created_at));
  const body = $("#today-table tbody");
  body.replaceChildren(...rows.map(chargeRow));
  labelCells($("#today-table"));
  show($("#today-table"), rows.length > 0);
  show($("#today-empty"), rows.length === 0);
}

function chargeRow(charge) {
  const actions = el("td", { class: "actions-cell" });
  const described = `${euros(charge.amount)} ${localTime(charge.created_at, language())}`;
  if (charge.status === "pending") {
    actions.append(el("button", {
      type: "button", class: "secondary", text: t("provider.today.void"),
      "aria-label": t("provider.today.void_label", { charge: described }),
      onclick: (event) => voidCharge(charge, event.currentTarget),
    }));
  }
  const refundable = charge.amount - (charge.refunded_amount || 0);
  if (charge.status === "captured" && refundable > 0) {
    const inputId = `refund-${charge.id}`;
    const form = el("form", { class: "inline-form", novalidate: true },
      el("label", { for: inputId, text: t("provider.today.refund_amount") }),
      el("input", { id: inputId, name: "amount", inputmode: "decimal", autocomplete: "off", size: "8", value: "",
        "aria-describedby": `${inputId}-help` }),
      el("span", { id: `${inputId}-help`, class: "help", text: t("provider.today.refundable", { amount: euros(refundable) }) }),
      el("button", { type: "submit", class: "secondary", text: t("provider.today.refund"),
        "aria-label": t("provider.today.refund_label", { charge: described }) }));
    const keys = new AttemptKeys();
    onSubmit(form, (fields) => refund(charge, fields, keys));
    actions.append(form);
  }
  let status = t(STATUS_KEYS[charge.status] || charge.status);
  if (charge.refunded_amount) status += ` · ${t("provider.today.refunded", { amount: euros(charge.refunded_amount) })}`;
  return el("tr", { dataset: { chargeId: charge.id } },
    el("td", { text: localTime(charge.created_at, language()) }),
    el("td", { class: "number", text: euros(charge.amount) }),
    el("td", { text: categoryName(charge.category, state.categories) }),
    el("td", { text: status }),
    actions);
}

async function voidCharge(charge, button) {
  button.disabled = true;
  try {
    await idempotentPost(`/v1/charges/${encodeURIComponent(charge.id)}/void`, { token: token() }, newKey());
    say($("#today-message"), t("provider.today.voided", { amount: euros(charge.amount) }), "ok");
    if (state.pending && state.pending.id === charge.id) { state.watching += 1; endCode(); }
  } catch (error) {
    say($("#today-message"), problemText(error), "error");
  }
  await refreshToday();
}

async function refund(charge, fields, keys) {
  const amount = parseEuros(fields.get("amount"));
  if (amount === null || amount <= 0) {
    say($("#today-message"), t("provider.charge.bad_amount"), "error");
    return;
  }
  try {
    await idempotentPost(`/v1/charges/${encodeURIComponent(charge.id)}/refunds`, { token: token(), body: { amount } }, keys.keyFor({ amount }));
    keys.answered();
    say($("#today-message"), t("provider.today.refund_done", { amount: euros(amount) }), "ok");
  } catch (error) {
    if (!(error instanceof ConnectionLost)) keys.answered();
    say($("#today-message"), error instanceof ApiError && error.code === "refund_exceeds_capture"
      ? t("provider.today.refund_too_much") : problemText(error), "error");
  }
  await refreshToday();
}

const settlementKeys = new AttemptKeys();

async function settle() {
  const box = $("#settlement-result");
  try {
    const batch = await idempotentPost("/v1/settlements", { token: token() }, settlementKeys.keyFor({}));
    settlementKeys.answered();
    fill(box,
      el("p", { class: "outcome-ok", text: t("provider.settlement.done", { amount: euros(batch.amount), count: batch.count }) }),
      el("dl", { class: "reference" },
        el("dt", { text: t("provider.settlement.reference") }),
        el("dd", { class: "bank-reference", id: "settlement-reference", text: batch.reference_printed }),
        el("dt", { text: t("provider.settlement.rf_reference") }),
        el("dd", { class: "bank-reference", id: "settlement-rf-reference", text: batch.rf_reference_printed }),
        el("dt", { text: t("common.amount") }),
        el("dd", { text: euros(batch.amount) })),
      batch.more_to_settle ? el("p", { text: t("provider.settlement.more") }) : null,
      batch.amount > 0 ? invoiceButton(batch) : el("p", { text: t("provider.settlement.no_invoice") }));
    await loadSettlements();
  } catch (error) {
    if (!(error instanceof ConnectionLost)) settlementKeys.answered();
    const text = error instanceof ApiError && error.code === "nothing_to_settle" ? t("provider.settlement.nothing") : problemText(error);
    box.replaceChildren(el("p", { class: "outcome-error", text }));
  }
  show(box);
}

const SETTLEMENT_STATUS = { open: "provider.settlements.open", invoiced: "provider.settlements.invoiced", paid: "provider.settlements.paid" };

function invoiceButton(batch) {
  return el("button", {
    type: "button", class: "secondary", text: t("provider.settlements.invoice"),
    "aria-label": t("provider.settlements.invoice_for", { reference: batch.reference_printed }),
    onclick: () => saveFile(finvoiceFileName(batch), finvoice(state.provider, batch, {
      buyer: t("provider.invoice.buyer"),
      articleName: t("provider.invoice.article", { reference: batch.reference_printed, count: batch.count }),
    }), "application/xml"),
  });
}

async function loadSettlements() {
  let page;
  try {
    page = await request("GET", "/v1/settlements?limit=10", { token: token() });
  } catch (error) {
    say($("#today-message"), problemText(error), "error");
    return;
  }
  $("#settlements-table tbody").replaceChildren(...page.data.map((batch) => el("tr", { dataset: { settlementId: batch.id } },
    el("td", { text: localDate(batch.created_at, language()) }),
    el("td", { class: "bank-reference", text: batch.reference_printed }),
    el("td", { class: "number", text: euros(batch.amount) }),
    el("td", { text: t(SETTLEMENT_STATUS[batch.status] || batch.status) }),
    el("td", {}, batch.amount > 0 ? invoiceButton(batch) : null))));
  labelCells($("#settlements-table"));
  show($("#settlements-table"), page.data.length > 0);
  show($("#settlements-empty"), page.data.length === 0);
}

function methodChanged() {
  const method = new FormData($("#charge-form")).get("method");
  show($("#national-id-field"), method === "national_id");
}

setUp(() => {
  if (state.provider) {
    refreshToday();
    loadSettlements();
    const select = $("#category");
    for (const option of select.options) option.textContent = categoryName(option.value, state.categories);
  }
});
onSubmit($("#signin-form"), signIn);
onSubmit($("#charge-form"), charge);
onSubmit($("#code-form"), confirmCode);
onSubmit($("#settlement-form"), settle);
$("#code-cancel").addEventListener("click", cancelPending);
$("#today-refresh").addEventListener("click", refreshToday);
document.addEventListener("wallet:charges-changed", refreshToday);  // a charge made in provider-offers.js
$("#signout").addEventListener("click", () => { state.watching += 1; signedOut(); $("#client-id").focus(); });
for (const radio of document.querySelectorAll("input[name=method]")) radio.addEventListener("change", methodChanged);
methodChanged();
if (session.token) {
  open().catch((error) => { signedOut(); say($("#signin-message"), problemText(error), "error"); });
} else {
  signedOut();
}
