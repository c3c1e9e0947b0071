// The provider's marketplace part of /provider: charge delivered services (suoritteet) by picking
// one of its offers and a quantity, seeing the price, the budget's part and the client's own share
// before confirming; and its own offers: make, reprice, withdraw. Reads the token provider.js keeps
// in this tab's sessionStorage; loads when the signed-in part shows.

import { ApiError, AttemptKeys, ConnectionLost, Session, idempotentPost, newKey, request, tokenClaims } from "./api.js";
import { $, el, fill, labelCells, onSubmit, say, show } from "./dom.js";
import { addStrings, language, onLanguageChange, problemText, t } from "./i18n.js";
import { OFFER_LANGUAGES, languageName, municipalities, parseQuantity, placeNames, priceItem, quantityText, serviceName, unitName } from "./catalog.js";
import { formatEuros, parseEuros } from "./money.js";

addStrings({
  "items.heading": ["Veloita palveluina (suoritteet)", "Debitera som tjänster (prestationer)", "Charge delivered services"],
  "items.intro": ["Valitse tarjoamasi palvelu ja määrä. Budjetti maksaa enintään palvelun yksikköarvon; loppu on asiakkaan omavastuu, jonka asiakas maksaa sinulle suoraan.", "Välj en tjänst du erbjuder och mängden. Budgeten betalar högst tjänstens enhetsvärde; resten är klientens egen andel, som klienten betalar direkt till dig.", "Pick a service you offer and the quantity. The budget pays at most the service's unit value; the rest is the client's own share, paid to you directly."],
  "items.offer": ["Palvelu (oma tarjous)", "Tjänst (eget erbjudande)", "Service (your offer)"],
  "items.no_offers": ["Sinulla ei ole voimassa olevia tarjouksia. Tee tarjous alla.", "Du har inga gällande erbjudanden. Gör ett erbjudande nedan.", "You have no active offers. Make one below."],
  "items.quantity": ["Määrä", "Mängd", "Quantity"],
  "items.quantity_help": ["Esimerkiksi 1,5 (enintään kaksi desimaalia)", "Till exempel 1,5 (högst två decimaler)", "For example 1,5 (at most two decimals)"],
  "items.bad_quantity": ["Kirjoita määrä, esimerkiksi 1,5.", "Skriv mängden, till exempel 1,5.", "Enter the quantity, for example 1,5."],
  "items.preview": ["Ennen vahvistusta", "Före bekräftelsen", "Before you confirm"],
  "items.price": ["Hinta", "Pris", "Price"],
  "items.budget": ["Budjetti maksaa", "Budgeten betalar", "The budget pays"],
  "items.own_share": ["Asiakkaan omavastuu (maksetaan sinulle suoraan)", "Klientens egen andel (betalas direkt till dig)", "The client's own share (paid to you directly)"],
  "items.submit": ["Vahvista ja veloita", "Bekräfta och debitera", "Confirm and charge"],
  "items.captured": ["Veloitettu budjetista {amount}.", "Debiterat från budgeten {amount}.", "Charged to the budget: {amount}."],
  "items.collect": ["Peri asiakkaalta omavastuu {amount}.", "Ta ut den egna andelen {amount} av klienten.", "Collect the own share of {amount} from the client."],
  "items.phone": ["Asiakkaan puhelin", "Klientens telefon", "The client's phone"],
  "items.national_id": ["Asiakkaan henkilötunnus", "Klientens personbeteckning", "The client's national id"],
  "items.by_national_id": ["Henkilötunnuksella (henkilökortti)", "Med personbeteckning (id-kort)", "By national id (ID card)"],
  "items.by_code": ["Tekstiviestikoodilla", "Med sms-kod", "By SMS code"],
  "items.code": ["Koodi asiakkaan puhelimesta", "Koden från klientens telefon", "The code from the client's phone"],
  "items.code_submit": ["Vahvista koodilla", "Bekräfta med koden", "Confirm with the code"],
  "offers.heading": ["Omat tarjoukset", "Egna erbjudanden", "Your offers"],
  "offers.caption": ["Tarjouksesi", "Dina erbjudanden", "Your offers"],
  "offers.none": ["Ei tarjouksia vielä.", "Inga erbjudanden ännu.", "No offers yet."],
  "offers.service": ["Palvelu", "Tjänst", "Service"],
  "offers.unit_price": ["Hinta", "Pris", "Price"],
  "offers.unit_value": ["Budjetti maksaa enintään", "Budgeten betalar högst", "The budget pays at most"],
  "offers.own_share": ["Omavastuu", "Egen andel", "Own share"],
  "offers.where": ["Kunnat", "Kommuner", "Municipalities"],
  "offers.languages": ["Kielet", "Språk", "Languages"],
  "offers.status": ["Tila", "Status", "Status"],
  "offers.active": ["Voimassa", "Gällande", "Active"],
  "offers.withdrawn": ["Peruttu", "Återkallat", "Withdrawn"],
  "offers.new_price": ["Muuta hinta", "Ändra priset", "Change the price"],
  "offers.new_price_for": ["Uusi hinta euroina: {service}", "Nytt pris i euro: {service}", "New price in euros: {service}"],
  "offers.reprice_for": ["Muuta hinta: {service}", "Ändra priset: {service}", "Change the price: {service}"],
  "offers.withdraw": ["Peru tarjous", "Återkalla", "Withdraw"],
  "offers.withdraw_for": ["Peru tarjous: {service}", "Återkalla erbjudandet: {service}", "Withdraw the offer: {service}"],
  "offers.repriced": ["Tarjouksen {service} hinta on nyt {amount}.", "Priset för {service} är nu {amount}.", "{service} now costs {amount}."],
  "offers.withdrawn_now": ["Tarjous {service} peruttu.", "Erbjudandet {service} återkallat.", "Offer {service} withdrawn."],
  "offers.new": ["Uusi tarjous", "Nytt erbjudande", "New offer"],
  "offers.pick_service": ["Palvelu luettelosta", "Tjänst ur katalogen", "Service from the catalog"],
  "offers.price": ["Hinta euroina yksiköltä", "Pris i euro per enhet", "Price in euros per unit"],
  "offers.municipalities": ["Kunnat, joissa palvelet", "Kommuner där du betjänar", "Municipalities you serve"],
  "offers.municipalities_help": ["Valitse yksi tai useampi (Ctrl tai Cmd + napsautus).", "Välj en eller flera (Ctrl eller Cmd + klick).", "Pick one or more (Ctrl or Cmd + click)."],
  "offers.languages_legend": ["Palvelukielet", "Språk du betjänar på", "Languages you serve in"],
  "offers.address": ["Toimipaikan osoite (vapaaehtoinen)", "Adress (frivillig)", "Address (optional)"],
  "offers.description": ["Kuvaus (vapaaehtoinen)", "Beskrivning (frivillig)", "Description (optional)"],
  "offers.create": ["Lisää tarjous", "Lägg till erbjudandet", "Add the offer"],
  "offers.created": ["Tarjous {service} lisätty hintaan {amount}.", "Erbjudandet {service} tillagt till priset {amount}.", "Offer {service} added at {amount}."],
  "offers.nothing_to_offer": ["Luettelossa ei ole palveluja, joita voisit vielä tarjota.", "Katalogen har inga tjänster du ännu kan erbjuda.", "The catalog has no service you could offer yet."],
});

const session = new Session("provider");
const chargeKeys = new AttemptKeys();
const state = { providerId: null, categories: [], services: new Map(), offers: [], places: new Map(), pending: null };
const euros = (cents) => formatEuros(cents, language());

function token() {
  const found = session.token;
  if (!found) throw new ApiError(401, { code: "unauthorized", detail: "signed out" });
  return found;
}

const activeOffers = () => state.offers.filter((offer) => offer.status === "active");
const serviceOf = (offer) => state.services.get(offer.service);
const offerName = (offer) => (serviceOf(offer) ? serviceName(serviceOf(offer)) : offer.service);

async function load() {
  const claims = session.token ? tokenClaims(session.token) : null;
  if (!claims || claims.role !== "provider") return;
  state.providerId = claims.provider_id;
  try {
    const id = encodeURIComponent(state.providerId);
    const [provider, services, offers, places] = await Promise.all([
      request("GET", `/v1/providers/${id}`, { token: token() }),
      request("GET", "/v1/services?limit=200", { token: token() }),
      request("GET", `/v1/providers/${id}/offers?limit=200`, { token: token() }),
      municipalities(token()),
    ]);
    state.categories = provider.categories;
    state.services = new Map(services.data.map((service) => [service.code, service]));
    state.offers = offers.data;
    state.places = places;
  } catch (error) {
    say($("#offers-message"), problemText(error), "error");
    return;
  }
  render();
}

// Charging by items.

function selectedOffer() {
  const id = $("#item-offer").value;
  return state.offers.find((offer) => offer.id === id) || null;
}

function preview() {
  const offer = selectedOffer();
  const hundredths = parseQuantity($("#item-quantity").value);
  const box = $("#item-preview");
  const service = offer && serviceOf(offer);
  if (!offer || !service || hundredths === null || service.unit_value === null) {
    fill(box);
    show(box, false);
    return null;
  }
  show(box);
  const priced = priceItem(offer.unit_price, service.unit_value, hundredths);
  fill(box,
    el("h3", { text: t("items.preview") }),
    el("dl", { class: "figures" },
      el("dt", { text: `${t("items.price")} (${quantityText(hundredths).replace(".", language() === "en" ? "." : ",")} × ${t("catalog.per_unit", { amount: euros(offer.unit_price), unit: unitName(service.unit) })})` }),
      el("dd", { id: "item-price", text: euros(priced.price) }),
      el("dt", { text: t("items.budget") }),
      el("dd", { id: "item-budget", text: euros(priced.amount) }),
      el("dt", { class: "total", text: t("items.own_share") }),
      el("dd", { id: "item-own-share", class: "total", text: euros(priced.ownShare) })));
  return { offer, hundredths, priced };
}

function itemOutcome(text, kind, extra) {
  const box = $("#item-outcome");
  fill(box, el("p", { class: `outcome-${kind}`, text }), extra ? el("p", { text: extra }) : null);
  box.className = `outcome outcome-box-${kind}`;
  show(box);
}

async function chargeItems(form) {
  const chosen = preview();
  const phone = form.get("phone").trim();
  const method = form.get("method");
  if (!phone) {
    itemOutcome(t("provider.charge.need_phone"), "error");
    $("#item-phone").focus();
    return;
  }
  if (!chosen) {
    itemOutcome(t("items.bad_quantity"), "error");
    $("#item-quantity").focus();
    return;
  }
  const nationalId = form.get("national_id").trim().toUpperCase();
  if (method === "national_id" && !nationalId) {
    itemOutcome(t("provider.charge.need_national_id"), "error");
    $("#item-national-id").focus();
    return;
  }
  const body = {
    phone,
    identity: method === "national_id" ? { method, national_id: nationalId } : { method },
    items: [{ service: chosen.offer.service, quantity: quantityText(chosen.hundredths) }],
  };
  let result;
  try {
    result = await idempotentPost("/v1/charges", { token: token(), body }, chargeKeys.keyFor(body));
  } catch (error) {
    if (error instanceof ConnectionLost) {
      itemOutcome(t("provider.charge.connection_lost"), "error");  // the key is kept: pressing again repeats
      return;
    }
    chargeKeys.answered();
    itemOutcome(chargeProblem(error), "error");
    return;
  }
  chargeKeys.answered();
  $("#item-national-id").value = "";
  if (result.status === "captured") {
    captured(result);
  } else {
    state.pending = result;
    show($("#item-code-form"));
    itemOutcome(t("provider.outcome.code_sent", { amount: euros(result.amount) }), "info");
    $("#item-code").focus();
  }
  changed();
}

function captured(charge) {
  itemOutcome(t("items.captured", { amount: euros(charge.amount) }), "ok",
    charge.own_share ? t("items.collect", { amount: euros(charge.own_share) }) : null);
}

async function confirmCode(form) {
  const pending = state.pending;
  const code = form.get("code").trim();
  if (!pending || !/^\d{6}$/.test(code)) {
    itemOutcome(t("provider.code.bad_format"), "error");
    return;
  }
  try {
    const confirmed = await idempotentPost(`/v1/charges/${encodeURIComponent(pending.id)}/confirm`, { token: token(), body: { code } }, newKey());
    captured({ ...pending, ...confirmed });
    state.pending = null;
    $("#item-code").value = "";
    show($("#item-code-form"), false);
  } catch (error) {
    if (error instanceof ApiError && error.code === "identity_check_failed" && error.problem.charge_status === "pending") {
      itemOutcome(t("provider.outcome.wrong_code", { left: error.problem.attempts_left ?? "?" }), "error");
      return;
    }
    itemOutcome(error instanceof ApiError && error.code === "identity_check_failed" ? t("provider.outcome.identity_failed_voided") : chargeProblem(error), "error");
    if (!(error instanceof ConnectionLost)) { state.pending = null; show($("#item-code-form"), false); }
  }
  changed();
}

function chargeProblem(error) {
  if (!(error instanceof ApiError)) return problemText(error);
  if (error.code === "insufficient_funds") {
    const available = error.problem.available;
    return typeof available === "number" ? t("provider.outcome.insufficient_with", { available: euros(available) }) : t("provider.outcome.insufficient");
  }
  if (error.code === "not_found" && error.problem.field === "phone") return t("provider.outcome.no_wallet");
  return problemText(error);
}

// provider.js lists today's charges: tell it there is a new one.
function changed() {
  document.dispatchEvent(new CustomEvent("wallet:charges-changed"));
}

// Offers.

async function reprice(offer, fields) {
  const message = $("#offers-message");
  const cents = parseEuros(fields.get("unit_price"));
  if (cents === null || cents <= 0) {
    say(message, t("provider.charge.bad_amount"), "error");
    return;
  }
  try {
    await request("PATCH", `/v1/providers/${encodeURIComponent(state.providerId)}/offers/${encodeURIComponent(offer.id)}`, { token: token(), body: { unit_price: cents } });
    say(message, t("offers.repriced", { service: offerName(offer), amount: euros(cents) }), "ok");
  } catch (error) {
    say(message, problemText(error), "error");
  }
  await load();
}

async function withdraw(offer, button) {
  button.disabled = true;
  const message = $("#offers-message");
  try {
    await request("POST", `/v1/providers/${encodeURIComponent(state.providerId)}/offers/${encodeURIComponent(offer.id)}/withdraw`, { token: token() });
    say(message, t("offers.withdrawn_now", { service: offerName(offer) }), "ok");
  } catch (error) {
    say(message, problemText(error), "error");
  }
  await load();
}

async function createOffer(form) {
  const message = $("#offers-message");
  const cents = parseEuros(form.get("unit_price"));
  if (cents === null || cents <= 0) {
    say(message, t("provider.charge.bad_amount"), "error");
    $("#offer-price").focus();
    return;
  }
  const body = {
    service: form.get("service"),
    unit_price: cents,
    municipalities: form.getAll("municipalities"),
    languages: form.getAll("languages"),
  };
  for (const field of ["address", "description"]) if (form.get(field).trim()) body[field] = form.get(field).trim();
  try {
    const offer = await request("POST", `/v1/providers/${encodeURIComponent(state.providerId)}/offers`, { token: token(), body });
    say(message, t("offers.created", { service: offerName(offer), amount: euros(offer.unit_price) }), "ok");
    $("#offer-form").reset();
  } catch (error) {
    say(message, problemText(error), "error");
  }
  await load();
}

// Rendering.

function render() {
  const chosen = $("#item-offer").value;
  const offers = activeOffers();
  $("#item-offer").replaceChildren(...offers.map((offer) => {
    const service = serviceOf(offer);
    const unit = service ? unitName(service.unit) : "";
    return el("option", { value: offer.id, text: `${offerName(offer)}, ${t("catalog.per_unit", { amount: euros(offer.unit_price), unit })}` });
  }));
  if (offers.some((offer) => offer.id === chosen)) $("#item-offer").value = chosen;
  show($("#item-charge-form"), offers.length > 0);
  show($("#item-no-offers"), offers.length === 0);
  preview();

  const rows = state.offers.map((offer) => {
    const service = serviceOf(offer);
    const value = service ? service.unit_value : null;
    const priceId = `offer-price-${offer.id}`;
    let actions = null;
    if (offer.status === "active") {
      const form = el("form", { class: "inline-form", novalidate: true },
        el("label", { for: priceId, text: t("offers.new_price_for", { service: offerName(offer) }) }),
        el("input", { id: priceId, name: "unit_price", inputmode: "decimal", autocomplete: "off" }),
        el("button", { type: "submit", class: "secondary", text: t("offers.new_price"), "aria-label": t("offers.reprice_for", { service: offerName(offer) }) }));
      onSubmit(form, (fields) => reprice(offer, fields));
      actions = el("div", {}, form, el("button", {
        type: "button", class: "danger", text: t("offers.withdraw"),
        "aria-label": t("offers.withdraw_for", { service: offerName(offer) }), onclick: (event) => withdraw(offer, event.currentTarget),
      }));
    }
    return el("tr", { dataset: { offerId: offer.id, status: offer.status } },
      el("td", { text: offerName(offer) }),
      el("td", { class: "number", text: service ? t("catalog.per_unit", { amount: euros(offer.unit_price), unit: unitName(service.unit) }) : euros(offer.unit_price) }),
      el("td", { class: "number", text: value === null ? "–" : euros(value) }),
      el("td", { class: "number", text: value === null ? "–" : euros(Math.max(0, offer.unit_price - value)) }),
      el("td", { text: placeNames(offer.municipalities, state.places) || "–" }),
      el("td", { text: offer.languages.map(languageName).join(", ") || "–" }),
      el("td", { text: t(offer.status === "active" ? "offers.active" : "offers.withdrawn") }),
      el("td", {}, actions));
  });
  const headings = ["offers.service", "offers.unit_price", "offers.unit_value", "offers.own_share", "offers.where", "offers.languages", "offers.status", "common.actions"];
  fill($("#offer-list"), rows.length ? el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": t("offers.caption") },
    el("table", { id: "offer-table", class: "stack" },
      el("caption", { class: "visually-hidden", text: t("offers.caption") }),
      el("thead", {}, el("tr", {}, headings.map((key, index) => el("th", { scope: "col", class: index >= 1 && index <= 3 ? "number" : null, text: t(key) })))),
      el("tbody", {}, rows))) : el("p", { text: t("offers.none") }));
  if (rows.length) labelCells($("#offer-table"));

  const offered = new Set(activeOffers().map((offer) => offer.service));
  const open = [...state.services.values()].filter((service) => state.categories.includes(service.category) && !offered.has(service.code));
  const select = $("#offer-service");
  const was = select.value;
  select.replaceChildren(...open.map((service) => el("option", {
    value: service.code, text: `${serviceName(service)} (${service.unit_value === null ? "–" : t("catalog.per_unit", { amount: euros(service.unit_value), unit: unitName(service.unit) })})`,
  })));
  if (open.some((service) => service.code === was)) select.value = was;
  show($("#offer-form"), open.length > 0);
  show($("#offer-none"), open.length === 0);
  const places = $("#offer-municipalities");
  if (places.options.length !== state.places.size) {
    places.replaceChildren(...[...state.places].map(([code, name]) => el("option", { value: code, text: name })));
  }
}

function build() {
  const method = (value, key, checked) => el("div", { class: "choice" },
    el("input", { type: "radio", id: `item-method-${value}`, name: "method", value, checked }),
    el("label", { for: `item-method-${value}`, text: t(key) }));
  const chargeForm = el("form", { id: "item-charge-form", novalidate: true, hidden: true },
    el("label", { for: "item-phone", text: t("items.phone") }),
    el("input", { id: "item-phone", name: "phone", type: "tel", inputmode: "tel", autocomplete: "off", required: true }),
    el("label", { for: "item-offer", text: t("items.offer") }),
    el("select", { id: "item-offer", name: "offer", required: true, onchange: preview }),
    el("label", { for: "item-quantity", text: t("items.quantity") }),
    el("input", { id: "item-quantity", name: "quantity", inputmode: "decimal", autocomplete: "off", required: true, "aria-describedby": "item-quantity-help", oninput: preview }),
    el("p", { id: "item-quantity-help", class: "help", text: t("items.quantity_help") }),
    el("div", { id: "item-preview", class: "outcome", role: "status", "aria-live": "polite", hidden: true }),
    el("fieldset", {},
      el("legend", { text: t("provider.charge.identity") }),
      method("national_id", "items.by_national_id", true),
      method("otp", "items.by_code", false)),
    el("label", { for: "item-national-id", text: t("items.national_id") }),
    el("input", { id: "item-national-id", name: "national_id", autocomplete: "off", spellcheck: "false" }),
    el("button", { type: "submit", text: t("items.submit") }));
  onSubmit(chargeForm, chargeItems);
  const codeForm = el("form", { id: "item-code-form", novalidate: true, hidden: true },
    el("label", { for: "item-code", text: t("items.code") }),
    el("input", { id: "item-code", name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", required: true }),
    el("button", { type: "submit", text: t("items.code_submit") }));
  onSubmit(codeForm, confirmCode);
  fill($("#item-charge-body"),
    el("p", { text: t("items.intro") }),
    el("p", { id: "item-no-offers", text: t("items.no_offers") }),
    chargeForm, codeForm,
    el("div", { id: "item-outcome", class: "outcome", role: "status", "aria-live": "polite", "aria-atomic": "true", hidden: true }));

  const languages = el("fieldset", {}, el("legend", { text: t("offers.languages_legend") }),
    OFFER_LANGUAGES.map((code) => el("div", { class: "choice" },
      el("input", { type: "checkbox", id: `offer-language-${code}`, name: "languages", value: code }),
      el("label", { for: `offer-language-${code}`, text: languageName(code) }))));
  const offerForm = el("form", { id: "offer-form", novalidate: true },
    el("h3", { text: t("offers.new") }),
    el("label", { for: "offer-service", text: t("offers.pick_service") }),
    el("select", { id: "offer-service", name: "service", required: true }),
    el("label", { for: "offer-price", text: t("offers.price") }),
    el("input", { id: "offer-price", name: "unit_price", inputmode: "decimal", autocomplete: "off", required: true }),
    el("label", { for: "offer-municipalities", text: t("offers.municipalities") }),
    el("select", { id: "offer-municipalities", name: "municipalities", multiple: true, size: "6", "aria-describedby": "offer-municipalities-help" }),
    el("p", { id: "offer-municipalities-help", class: "help", text: t("offers.municipalities_help") }),
    languages,
    el("label", { for: "offer-address", text: t("offers.address") }),
    el("input", { id: "offer-address", name: "address", autocomplete: "off", maxlength: "200" }),
    el("label", { for: "offer-description", text: t("offers.description") }),
    el("input", { id: "offer-description", name: "description", autocomplete: "off", maxlength: "200" }),
    el("button", { type: "submit", text: t("offers.create") }));
  onSubmit(offerForm, createOffer);
  fill($("#offers-body"),
    el("div", { id: "offer-list" }),
    el("p", { id: "offers-message", class: "message", role: "status", "aria-live": "polite", hidden: true }),
    el("p", { id: "offer-none", text: t("offers.nothing_to_offer"), hidden: true }),
    offerForm);
}

function start() {
  const signedIn = document.getElementById("signed-in");
  if (!signedIn || !document.getElementById("item-charge-body")) return;
  build();
  onLanguageChange(() => { build(); render(); });
  new MutationObserver(() => { if (!signedIn.hidden) load(); }).observe(signedIn, { attributes: true, attributeFilter: ["hidden"] });
  if (!signedIn.hidden) load();
}

start();
