// Finance's payments on /admin: the settlements by status (open, invoiced, in a payment batch,
// paid) with their age; payment batches made, their pain.001 file downloaded and cancelled; the
// bank's camt.054/camt.053 files uploaded, each entry's outcome shown. Speaks as the finance sign-in
// of the page (access.js); shows itself only when there is one.

import { fetchFile, signedInAs, tokenFor } from "./access.js";
import { ApiError, ConnectionLost, idempotentPost, newKey, request } from "./api.js";
import { $, el, fill, labelCells, localDate, onSubmit, say, show } from "./dom.js";
import { addStrings, language, onLanguageChange, problemText, t } from "./i18n.js";
import { formatEuros } from "./money.js";

addStrings({
  "finance.heading": ["Maksut ja pankkitiedostot", "Betalningar och bankfiler", "Payments and bank files"],
  "finance.intro": ["Tilitykset tiloittain: avoimet odottavat laskua, laskutetut maksua, maksuerässä olevat pankin vahvistusta.", "Redovisningar efter status: öppna väntar på faktura, fakturerade på betalning, de i en betalningsomgång på bankens bekräftelse.", "Settlements by status: open ones wait for an invoice, invoiced ones for payment, those in a payment batch for the bank's word."],
  "finance.refresh": ["Hae maksutilanne", "Hämta betalningsläget", "Reload the payments"],
  "finance.by_status": ["Tilitykset tiloittain", "Redovisningar efter status", "Settlements by status"],
  "finance.status": ["Tila", "Status", "Status"],
  "finance.count": ["Kpl", "St.", "Count"],
  "finance.sum": ["Yhteensä", "Totalt", "Total"],
  "finance.oldest": ["Vanhin", "Äldsta", "Oldest"],
  "finance.in_batch": ["Maksuerässä", "I betalningsomgång", "In a payment batch"],
  "finance.days": ["{days} pv", "{days} d", "{days} d"],
  "finance.show": ["Näytä tilitykset", "Visa redovisningar", "Show settlements"],
  "finance.all": ["Kaikki", "Alla", "All"],
  "finance.list": ["Tilitykset: {filter}", "Redovisningar: {filter}", "Settlements: {filter}"],
  "finance.none": ["Ei tilityksiä tässä tilassa.", "Inga redovisningar med denna status.", "No settlements with this status."],
  "finance.more": ["Näytetään {count} uusinta tilitystä.", "De {count} senaste redovisningarna visas.", "Showing the newest {count} settlements."],
  "finance.pick": ["Maksuerään", "Till omgången", "To batch"],
  "finance.pick_for": ["Valitse maksuerään: {reference}", "Välj till betalningsomgången: {reference}", "Pick for the payment batch: {reference}"],
  "finance.age": ["Ikä", "Ålder", "Age"],
  "finance.batch": ["Maksuerä", "Betalningsomgång", "Payment batch"],
  "finance.create": ["Luo maksuerä", "Skapa betalningsomgång", "Create payment batch"],
  "finance.create_help": ["Valitse maksettavat tilitykset yllä. Jos et valitse yhtään, maksuerään tulevat kaikki laskutetut tilitykset, jotka eivät vielä ole maksuerässä.", "Välj redovisningarna att betala ovan. Väljer du inga, tas alla fakturerade redovisningar som inte redan är i en omgång med.", "Pick the settlements to pay above. With none picked, every invoiced settlement not yet in a batch goes in."],
  "finance.created": ["Maksuerä {message} luotu: {count} maksua, yhteensä {amount}. Lataa maksutiedosto ja vie se pankkiin.", "Betalningsomgången {message} skapad: {count} betalningar, totalt {amount}. Ladda ner betalningsfilen och för den till banken.", "Payment batch {message} created: {count} payments, {amount} in all. Download the payment file and take it to the bank."],
  "finance.batches": ["Maksuerät", "Betalningsomgångar", "Payment batches"],
  "finance.batches_none": ["Ei avoimia maksueriä.", "Inga öppna betalningsomgångar.", "No open payment batches."],
  "finance.made": ["Luotu", "Skapad", "Created"],
  "finance.payments": ["Maksuja", "Betalningar", "Payments"],
  "finance.download": ["Lataa maksutiedosto", "Ladda ner betalningsfilen", "Download the payment file"],
  "finance.download_for": ["Lataa maksutiedosto {message}", "Ladda ner betalningsfilen {message}", "Download the payment file {message}"],
  "finance.downloaded": ["Maksutiedosto {name} ladattu.", "Betalningsfilen {name} nedladdad.", "Payment file {name} downloaded."],
  "finance.cancel": ["Peru maksuerä", "Annullera omgången", "Cancel the batch"],
  "finance.cancel_for": ["Peru maksuerä {message}", "Annullera betalningsomgången {message}", "Cancel payment batch {message}"],
  "finance.cancelled": ["Maksuerä {message} peruttu; sen tilitykset voi maksaa uudessa erässä.", "Betalningsomgången {message} annullerad; dess redovisningar kan betalas i en ny omgång.", "Payment batch {message} cancelled; its settlements can go in a new batch."],
  "finance.statement_heading": ["Pankin tiliotteet", "Bankens kontoutdrag", "Bank statements"],
  "finance.statement_intro": ["Lataa pankin veloitusilmoitus (camt.054) tai tiliote (camt.053). Maksetut tilitykset merkitään maksetuiksi kirjauspäivällä; muut rivit kerrotaan yksitellen.", "Ladda upp bankens debiteringsavi (camt.054) eller kontoutdrag (camt.053). Betalda redovisningar markeras som betalda med bokföringsdagen; övriga rader redovisas en och en.", "Upload the bank's debit notification (camt.054) or statement (camt.053). Settlements paid become paid with the booking date; every other entry is reported one by one."],
  "finance.statement_file": ["Tiliotetiedosto (camt.054 tai camt.053)", "Kontoutdragsfil (camt.054 eller camt.053)", "Statement file (camt.054 or camt.053)"],
  "finance.statement_submit": ["Lue tiliote", "Läs kontoutdraget", "Read the statement"],
  "finance.statement_done": ["{file}: {count} kirjausta. {summary}", "{file}: {count} poster. {summary}", "{file}: {count} entries. {summary}"],
  "finance.statement_caption": ["Kirjaukset tiedostossa {file}", "Poster i filen {file}", "Entries in {file}"],
  "finance.booking_date": ["Kirjauspäivä", "Bokföringsdag", "Booking date"],
  "finance.direction": ["Suunta", "Riktning", "Direction"],
  "finance.DBIT": ["Maksu", "Betalning", "Payment"],
  "finance.CRDT": ["Palautus", "Retur", "Returned"],
  "finance.outcome.paid": ["Maksettu", "Betald", "Paid"],
  "finance.outcome.returned": ["Palautui, maksetaan uudelleen", "Returnerad, betalas på nytt", "Returned, to be paid again"],
  "finance.outcome.already_paid": ["Oli jo maksettu", "Redan betald", "Already paid"],
  "finance.outcome.already_applied": ["Käsitelty jo aiemmin", "Redan behandlad", "Applied before"],
  "finance.outcome.amount_mismatch": ["Summa ei täsmää", "Beloppet stämmer inte", "Amount differs"],
  "finance.outcome.unknown_reference": ["Tuntematon viite", "Okänd referens", "Unknown reference"],
  "finance.outcome.not_paid": ["Ei maksettu", "Inte betald", "Not paid"],
  "finance.outcome.not_booked": ["Ei kirjattu", "Inte bokförd", "Not booked"],
  "finance.expected": ["(tilitys {amount})", "(redovisning {amount})", "(settlement {amount})"],
  "finance.statement_seen": ["Tämä tiliote on jo luettu; mitään ei muutettu.", "Detta kontoutdrag är redan inläst; inget ändrades.", "This statement was read before; nothing changed."],
});

const LIST_LIMIT = 200;
const DAY_MS = 86_400_000;
const STATUSES = ["open", "invoiced", "in_batch", "paid"];
const STATUS_KEYS = { open: "admin.settlements.open", invoiced: "admin.settlements.invoiced", in_batch: "finance.in_batch", paid: "admin.settlements.paid" };
const state = { settlements: [], more: false, batches: new Map(), names: new Map(), filter: "all", statement: null };

const euros = (cents) => formatEuros(cents, language());
const section = () => document.getElementById("payments");

// Paid is paid; otherwise a settlement held by a payment batch is "in a batch".
export function stage(settlement) {
  if (settlement.status === "paid") return "paid";
  return settlement.payment_batch_id ? "in_batch" : settlement.status;
}

export function ageDays(iso, now = Date.now()) {
  return Math.max(0, Math.floor((now - Date.parse(iso)) / DAY_MS));
}

const payable = (s) => stage(s) !== "paid" && stage(s) !== "in_batch" && s.amount > 0;

const token = () => tokenFor("finance");

function failed(region, error) {
  say(region, problemText(error), "error");
}

// Loading.

async function load() {
  if (!signedInAs("finance")) return;
  try {
    const page = await request("GET", `/v1/settlements?limit=${LIST_LIMIT}`, { token: token() });
    state.settlements = page.data;
    state.more = Boolean(page.next_cursor);
  } catch (error) {
    failed($("#payment-message"), error);
    return;
  }
  const ids = [...new Set(state.settlements.map((s) => s.payment_batch_id).filter(Boolean))];
  state.batches = new Map(await Promise.all(ids.map(async (id) => {
    try {
      return [id, await request("GET", `/v1/payment-batches/${encodeURIComponent(id)}`, { token: token() })];
    } catch {
      return [id, null];
    }
  })));
  for (const batch of state.batches.values()) {
    for (const item of batch ? batch.settlements : []) {
      const settlement = state.settlements.find((s) => s.id === item.settlement_id);
      if (settlement) state.names.set(settlement.provider_id, item.creditor_name);
    }
  }
  render();
  await nameProviders();
}

// The organizer's token (when pasted too) names providers no batch has named yet.
async function nameProviders() {
  if (!signedInAs("admin")) return;
  const adminToken = tokenFor("admin");
  const unknown = [...new Set(state.settlements.map((s) => s.provider_id))].filter((id) => !state.names.has(id));
  if (!unknown.length) return;
  await Promise.all(unknown.map(async (id) => {
    try {
      state.names.set(id, (await request("GET", `/v1/providers/${encodeURIComponent(id)}`, { token: adminToken })).name);
    } catch { /* the id stands in */ }
  }));
  render();
}

// Rendering.

function table(id, caption, headings, rows) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    el("table", { id, class: "stack" },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, headings.map(([key, number]) => el("th", { scope: "col", class: number ? "number" : null, text: t(key) })))),
      el("tbody", {}, rows)));
}

function render() {
  const picked = new Set(Array.from(document.querySelectorAll("#payment-settlements input[type=checkbox]:checked"), (box) => box.value));
  const now = Date.now();
  const summaryRows = STATUSES.map((status) => {
    const group = state.settlements.filter((s) => stage(s) === status);
    const oldest = group.length ? Math.max(...group.map((s) => ageDays(s.created_at, now))) : null;
    return el("tr", { dataset: { status } },
      el("th", { scope: "row", text: t(STATUS_KEYS[status]) }),
      el("td", { class: "number", dataset: { role: "count" }, text: String(group.length) }),
      el("td", { class: "number", dataset: { role: "sum" }, text: euros(group.reduce((sum, s) => sum + s.amount, 0)) }),
      el("td", { class: "number", text: oldest === null ? "–" : t("finance.days", { days: oldest }) }));
  });
  const filterLabel = state.filter === "all" ? t("finance.all") : t(STATUS_KEYS[state.filter]);
  const shown = state.settlements.filter((s) => state.filter === "all" || stage(s) === state.filter);
  const rows = shown.map((s) => {
    const batch = s.payment_batch_id ? state.batches.get(s.payment_batch_id) : null;
    const boxId = `pay-${s.id}`;
    return el("tr", { dataset: { settlementId: s.id, stage: stage(s) } },
      el("td", {}, payable(s) ? el("input", {
        type: "checkbox", id: boxId, value: s.id, checked: picked.has(s.id),
        "aria-label": t("finance.pick_for", { reference: s.reference_printed }),
      }) : null),
      el("td", { class: "bank-reference", text: s.reference_printed }),
      el("td", { text: state.names.get(s.provider_id) || s.provider_id }),
      el("td", { class: "number", text: euros(s.amount) }),
      el("td", { text: t(STATUS_KEYS[stage(s)]) }),
      el("td", { class: "number", text: t("finance.days", { days: ageDays(s.created_at, now) }) }),
      el("td", { text: batch ? batch.message_id : s.payment_batch_id || "–" }));
  });
  fill($("#payment-overview"),
    table("payment-status-table", t("finance.by_status"), [["finance.status"], ["finance.count", true], ["finance.sum", true], ["finance.oldest", true]], summaryRows),
    state.more ? el("p", { class: "help", text: t("finance.more", { count: state.settlements.length }) }) : null);
  fill($("#payment-list"),
    rows.length ? table("payment-settlements", t("finance.list", { filter: filterLabel }), [
      ["finance.pick"], ["admin.settlements.reference"], ["common.provider"], ["common.amount", true], ["finance.status"],
      ["finance.age", true], ["finance.batch"]], rows) : el("p", { text: t("finance.none") }));
  if (rows.length) labelCells($("#payment-settlements"));
  renderBatches();
  renderStatement();
}

function renderBatches() {
  const open = [...state.batches.values()].filter((batch) => batch && batch.status === "created");
  const rows = open.map((batch) => el("tr", { dataset: { batchId: batch.id } },
    el("td", { text: batch.message_id }),
    el("td", { text: localDate(batch.created_at, language()) }),
    el("td", { class: "number", text: String(batch.count) }),
    el("td", { class: "number", text: euros(batch.amount) }),
    el("td", {}, el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", text: t("finance.download"),
        "aria-label": t("finance.download_for", { message: batch.message_id }), onclick: () => downloadFile(batch) }),
      el("button", { type: "button", class: "danger", text: t("finance.cancel"),
        "aria-label": t("finance.cancel_for", { message: batch.message_id }), onclick: (event) => cancelBatch(batch, event.currentTarget) })))));
  fill($("#payment-batches"),
    el("h3", { text: t("finance.batches") }),
    rows.length ? table("payment-batch-table", t("finance.batches"), [
      ["finance.batch"], ["finance.made"], ["finance.payments", true], ["common.amount", true], ["common.actions"]], rows)
      : el("p", { text: t("finance.batches_none") }));
  if (rows.length) labelCells($("#payment-batch-table"));
}

// Payment batches.

async function createBatch() {
  const message = $("#payment-message");
  const ids = Array.from(document.querySelectorAll("#payment-settlements input[type=checkbox]:checked"), (box) => box.value);
  let batch;
  try {
    batch = await idempotentPost("/v1/payment-batches", { token: token(), body: ids.length ? { settlement_ids: ids } : {} }, newKey());
  } catch (error) {
    failed(message, error);
    return;
  }
  say(message, t("finance.created", { message: batch.message_id, count: batch.count, amount: euros(batch.amount) }), "ok");
  await load();
  changed();
}

async function downloadFile(batch) {
  const message = $("#payment-message");
  let response;
  try {
    response = await fetchFile(`/v1/payment-batches/${encodeURIComponent(batch.id)}/file`, token());
  } catch (error) {
    failed(message, error instanceof ApiError ? error : new ConnectionLost(String(error)));
    return;
  }
  if (!response.ok) {
    failed(message, new ApiError(response.status, await response.json().catch(() => ({}))));
    return;
  }
  const name = `${batch.message_id}.xml`;
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name, text: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  say(message, t("finance.downloaded", { name }), "ok");
}

async function cancelBatch(batch, button) {
  button.disabled = true;
  const message = $("#payment-message");
  try {
    await idempotentPost(`/v1/payment-batches/${encodeURIComponent(batch.id)}/cancel`, { token: token() }, newKey());
    say(message, t("finance.cancelled", { message: batch.message_id }), "ok");
  } catch (error) {
    failed(message, error);
    button.disabled = false;
    return;
  }
  await load();
  changed();
  $("#payment-create").focus();
}

// Bank statements.

async function readStatement(form) {
  const box = $("#statement-outcome");
  const file = form.get("file");
  if (!(file instanceof File) || !file.size) {
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: t("admin.reconcile.need_file") }));
    return;
  }
  try {
    const result = await idempotentPost("/v1/bank-statements", { token: token(), raw: await file.arrayBuffer(), contentType: "application/xml" }, newKey());
    state.statement = { file: file.name, result };
  } catch (error) {
    state.statement = null;
    const seen = error instanceof ApiError && error.status === 409 && error.problem.statement_id;
    box.replaceChildren(el("p", { class: "message message-error", role: "alert", text: seen ? t("finance.statement_seen") : problemText(error) }));
    return;
  }
  renderStatement();
  await load();
  changed();
}

function renderStatement() {
  if (!state.statement) return;
  const { file, result } = state.statement;
  const summary = Object.entries(result.summary).filter(([, count]) => count > 0)
    .map(([outcome, count]) => `${t(`finance.outcome.${outcome}`)}: ${count}`).join(", ");
  fill($("#statement-outcome"),
    el("p", { class: "message message-ok", text: t("finance.statement_done", { file, count: result.entries.length, summary }) }),
    table("statement-table", t("finance.statement_caption", { file }), [
      ["#"], ["finance.booking_date"], ["finance.direction"], ["admin.settlements.reference"], ["common.amount", true], ["admin.reconcile.outcome"]],
    result.entries.map((entry) => el("tr", { dataset: { outcome: entry.outcome } },
      el("td", { text: String(entry.position) }),
      el("td", { text: entry.booking_date ? localDate(`${entry.booking_date}T12:00:00Z`, language()) : "–" }),
      el("td", { text: t(`finance.${entry.direction}`) }),
      el("td", { class: "bank-reference", text: entry.reference ?? entry.end_to_end_id ?? "–" }),
      el("td", { class: "number", text: typeof entry.amount === "number" ? euros(entry.amount) : "–" }),
      el("td", {}, el("strong", { text: t(`finance.outcome.${entry.outcome}`) }),
        entry.outcome === "amount_mismatch" && typeof entry.settlement_amount === "number"
          ? ` ${t("finance.expected", { amount: euros(entry.settlement_amount) })}` : "",
        entry.detail && !["paid", "returned"].includes(entry.outcome) ? el("span", { class: "help", text: ` ${entry.detail}` }) : null)))));
  labelCells($("#statement-table"));
}

// The page's other sections (the settlement list, reconciliation) and this one tell each other
// when settlements changed.
function changed() {
  document.dispatchEvent(new CustomEvent("wallet:settlements-changed", { detail: { from: "payments" } }));
}

function build(root) {
  const filter = el("select", { id: "payment-filter", name: "filter" },
    ["all", ...STATUSES].map((status) => el("option", { value: status, text: status === "all" ? t("finance.all") : t(STATUS_KEYS[status]) })));
  filter.value = state.filter;
  filter.addEventListener("change", () => { state.filter = filter.value; render(); });
  const statementForm = el("form", { id: "statement-form", novalidate: true },
    el("label", { for: "statement-file", text: t("finance.statement_file") }),
    el("input", { id: "statement-file", name: "file", type: "file", accept: ".xml,application/xml,text/xml", required: true }),
    el("button", { type: "submit", text: t("finance.statement_submit") }));
  onSubmit(statementForm, readStatement);
  const createForm = el("form", { id: "payment-create-form", novalidate: true },
    el("p", { id: "payment-create-help", class: "help", text: t("finance.create_help") }),
    el("button", { type: "submit", id: "payment-create", text: t("finance.create"), "aria-describedby": "payment-create-help" }));
  onSubmit(createForm, createBatch);
  fill(root,
    el("p", { text: t("finance.intro") }),
    el("button", { type: "button", id: "payment-refresh", class: "secondary", text: t("finance.refresh"), onclick: load }),
    el("div", { id: "payment-overview" }),
    el("label", { for: "payment-filter", text: t("finance.show") }), filter,
    el("div", { id: "payment-list" }),
    createForm,
    el("p", { id: "payment-message", class: "message", role: "status", "aria-live": "polite", hidden: true }),
    el("div", { id: "payment-batches" }),
    el("h3", { text: t("finance.statement_heading") }),
    el("p", { text: t("finance.statement_intro") }),
    statementForm,
    el("div", { id: "statement-outcome", "aria-live": "polite" }));
}

function start() {
  const root = section();
  if (!root) return;
  const body = $("#payments-body", root);
  build(body);
  render();
  onLanguageChange(() => { build(body); render(); });
  document.addEventListener("wallet:settlements-changed", (event) => { if (event.detail?.from !== "payments") load(); });
  // admin.js shows the section once a finance token is there: load then, and again on each showing.
  new MutationObserver(() => { if (!root.hidden) load(); }).observe(root, { attributes: true, attributeFilter: ["hidden"] });
  if (!root.hidden) load();
}

start();
