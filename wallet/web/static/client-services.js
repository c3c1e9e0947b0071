// "Palvelut" on the client's page: pick a service, see who offers it near you (a municipality, a
// language), each offer's price, what the budget pays and your own share per unit; and, where the
// server says it (`units_left`), how many units this month's line still buys. Speaks as the page's
// sign-in (access.js); a representative compares for the client shown.

import { signedInAs, tokenFor } from "./access.js";
import { request } from "./api.js";
import { $, el, fill, onSubmit, say } from "./dom.js";
import { addStrings, language, onLanguageChange, problemText, t } from "./i18n.js";
import { OFFER_LANGUAGES, languageName, municipalities, placeNames, serviceName, unitName } from "./catalog.js";
import { formatEuros } from "./money.js";

addStrings({
  "compare.heading": ["Palvelut", "Tjänster", "Services"],
  "compare.intro": ["Vertaile palveluntuottajia. Budjettisi maksaa enintään palvelun yksikköarvon; jos hinta on suurempi, maksat erotuksen (omavastuu) palveluntuottajalle itse.", "Jämför producenter. Budgeten betalar högst tjänstens enhetsvärde; är priset högre betalar du skillnaden (egen andel) själv till producenten.", "Compare providers. Your budget pays at most the service's unit value; where the price is higher, you pay the difference (your own share) to the provider yourself."],
  "compare.service": ["Palvelu", "Tjänst", "Service"],
  "compare.municipality": ["Kunta", "Kommun", "Municipality"],
  "compare.any_municipality": ["Kaikki kunnat", "Alla kommuner", "Any municipality"],
  "compare.language": ["Palvelukieli", "Språk", "Language"],
  "compare.any_language": ["Mikä tahansa", "Vilket som helst", "Any"],
  "compare.submit": ["Näytä tarjoukset", "Visa erbjudanden", "Show the offers"],
  "compare.none_services": ["Palveluluettelossa ei ole vielä palveluja.", "Tjänstekatalogen har inga tjänster ännu.", "The service catalog is empty."],
  "compare.found": ["{service}: tarjouksia {count}", "{service}: {count} erbjudanden", "{service}: {count} offers"],
  "compare.none": ["Ei tarjouksia näillä valinnoilla.", "Inga erbjudanden med dessa val.", "No offers with these choices."],
  "compare.more": ["Näytetään 50 edullisinta.", "De 50 förmånligaste visas.", "Showing the 50 least costly to you."],
  "compare.price": ["Hinta", "Pris", "Price"],
  "compare.budget_pays": ["Budjetti maksaa", "Budgeten betalar", "The budget pays"],
  "compare.own_share": ["Omavastuusi", "Din egen andel", "Your own share"],
  "compare.units_left": ["Tämän kuun budjetilla vielä", "Månadens budget räcker till", "This month's budget still buys"],
  "compare.units": ["{count} × {unit}", "{count} × {unit}", "{count} × {unit}"],
  "compare.where": ["Kunnat", "Kommuner", "Municipalities"],
  "compare.languages": ["Kielet", "Språk", "Languages"],
  "compare.address": ["Osoite", "Adress", "Address"],
});

const state = { services: [], places: new Map(), result: null };
const euros = (cents) => formatEuros(cents, language());

const token = () => tokenFor("client", "representative");

async function load() {
  if (!signedInAs("client", "representative")) return;
  try {
    const [services, places] = await Promise.all([request("GET", "/v1/services?limit=200", { token: token() }), municipalities(token())]);
    state.services = services.data;
    state.places = places;
  } catch (error) {
    say($("#compare-message"), problemText(error), "error");
    return;
  }
  renderChoices();
}

function renderChoices() {
  const service = $("#compare-service");
  const chosen = service.value;
  service.replaceChildren(...state.services.map((item) => el("option", { value: item.code, text: serviceName(item) })));
  if (state.services.some((item) => item.code === chosen)) service.value = chosen;
  const place = $("#compare-municipality");
  const where = place.value;
  const names = [...state.places].sort((a, b) => a[1].localeCompare(b[1], "fi"));
  place.replaceChildren(el("option", { value: "", text: t("compare.any_municipality") }), ...names.map(([code, name]) => el("option", { value: code, text: name })));
  place.value = where;
  $("#compare-form button[type=submit]").disabled = state.services.length === 0;
  fill($("#compare-empty"), state.services.length ? null : el("p", { text: t("compare.none_services") }));
}

async function compare(form) {
  const query = new URLSearchParams({ service: form.get("service"), limit: "50" });
  if (form.get("municipality")) query.set("municipality", form.get("municipality"));
  if (form.get("language")) query.set("language", form.get("language"));
  const subject = document.getElementById("subject");  // a representative: the client shown
  if (subject && subject.value) query.set("client_id", subject.value);
  try {
    const page = await request("GET", `/v1/offers?${query}`, { token: token() });
    state.result = { service: form.get("service"), offers: page.data, more: Boolean(page.next_cursor) };
  } catch (error) {
    say($("#compare-message"), problemText(error), "error");
    return;
  }
  say($("#compare-message"), "");
  renderResult();
}

function renderResult() {
  const result = state.result;
  if (!result) return;
  const service = state.services.find((item) => item.code === result.service);
  const name = service ? serviceName(service) : result.service;
  const perUnit = (cents, unit) => t("catalog.per_unit", { amount: euros(cents), unit: unitName(unit) });
  const cards = result.offers.map((offer) => {
    const figures = [
      ["compare.price", perUnit(offer.unit_price, offer.unit), "price"],
      ["compare.budget_pays", perUnit(Math.min(offer.unit_price, offer.unit_value), offer.unit), "budget"],
      ["compare.own_share", perUnit(offer.own_share_per_unit, offer.unit), "own-share"],
    ];
    // Another part of the service adds units_left: shown where the server sends it.
    if (typeof offer.units_left === "number") figures.push(["compare.units_left", t("compare.units", { count: offer.units_left, unit: unitName(offer.unit) }), "units-left"]);
    if (offer.municipalities.length) figures.push(["compare.where", placeNames(offer.municipalities, state.places), "where"]);
    if (offer.languages.length) figures.push(["compare.languages", offer.languages.map(languageName).join(", "), "languages"]);
    if (offer.address) figures.push(["compare.address", offer.address, "address"]);
    return el("li", { class: "offer", dataset: { offerId: offer.offer_id } },
      el("h4", { text: offer.provider_name }),
      offer.description ? el("p", { text: offer.description }) : null,
      el("dl", { class: "figures" }, figures.flatMap(([key, text, role]) => [el("dt", { text: t(key) }), el("dd", { dataset: { role }, text })])));
  });
  fill($("#compare-result"),
    el("h3", { id: "compare-result-heading", tabindex: "-1", text: t("compare.found", { count: result.offers.length, service: name }) }),
    cards.length ? el("ol", { class: "offers", "aria-labelledby": "compare-result-heading" }, cards) : el("p", { text: t("compare.none") }),
    result.more ? el("p", { class: "help", text: t("compare.more") }) : null);
}

function build() {
  const form = el("form", { id: "compare-form", novalidate: true },
    el("label", { for: "compare-service", text: t("compare.service") }),
    el("select", { id: "compare-service", name: "service", required: true }),
    el("label", { for: "compare-municipality", text: t("compare.municipality") }),
    el("select", { id: "compare-municipality", name: "municipality" }),
    el("label", { for: "compare-language", text: t("compare.language") }),
    el("select", { id: "compare-language", name: "language" },
      el("option", { value: "", text: t("compare.any_language") }),
      OFFER_LANGUAGES.map((code) => el("option", { value: code, text: languageName(code) }))),
    el("button", { type: "submit", text: t("compare.submit") }));
  onSubmit(form, async (fields) => { await compare(fields); document.getElementById("compare-result-heading")?.focus(); });
  fill($("#compare-body"),
    el("p", { text: t("compare.intro") }),
    el("div", { id: "compare-empty" }),
    form,
    el("p", { id: "compare-message", class: "message", role: "alert", hidden: true }),
    el("div", { id: "compare-result" }));  // the focus moves to its heading: read from there
}

function start() {
  const wallet = document.getElementById("wallet");
  if (!wallet || !document.getElementById("compare-body")) return;
  build();
  onLanguageChange(() => { build(); renderChoices(); renderResult(); });
  new MutationObserver(() => { if (!wallet.hidden) load(); }).observe(wallet, { attributes: true, attributeFilter: ["hidden"] });
  if (!wallet.hidden) load();
}

start();
