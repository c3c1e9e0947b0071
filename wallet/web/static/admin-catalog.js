// The organizer's service catalog on /admin: each service with its unit and unit value (the most
// the budget pays for one unit) and the values set for later days; adding a service and changing a
// unit value from a day on; and every offer clients can compare. Speaks as the organizer's sign-in
// of the page (access.js); shows itself only when there is one.

import { signedInAs, tokenFor } from "./access.js";
import { request } from "./api.js";
import { $, el, fill, labelCells, localDate, onSubmit, say } from "./dom.js";
import { addStrings, language, onLanguageChange, problemText, t } from "./i18n.js";
import { UNITS, languageName, municipalities, placeNames, serviceName, unitName } from "./catalog.js";
import { formatEuros, parseEuros } from "./money.js";

addStrings({
  "catalog.heading": ["Palveluluettelo ja tarjoukset", "Tjänstekatalog och erbjudanden", "Service catalog and offers"],
  "catalog.intro": ["Palvelun yksikköarvo on enintään se, minkä budjetti maksaa yhdestä yksiköstä. Palveluntuottajan hinnan ylittävä osa on asiakkaan omavastuu.", "Tjänstens enhetsvärde är det mesta budgeten betalar för en enhet. Det som producentens pris överstiger är klientens egen andel.", "A service's unit value is the most the budget pays for one unit. What a provider's price is above it is the client's own share."],
  "catalog.services": ["Palvelut luettelossa", "Tjänster i katalogen", "Services in the catalog"],
  "catalog.none": ["Luettelossa ei ole vielä palveluja.", "Katalogen har inga tjänster ännu.", "The catalog has no services yet."],
  "catalog.code": ["Tunnus", "Kod", "Code"],
  "catalog.name": ["Nimi", "Namn", "Name"],
  "catalog.category": ["Budjetin palvelu", "Budgetens tjänst", "Budget category"],
  "catalog.unit": ["Yksikkö", "Enhet", "Unit"],
  "catalog.unit_value": ["Yksikköarvo nyt", "Enhetsvärde nu", "Unit value now"],
  "catalog.history": ["Yksikköarvot", "Enhetsvärden", "Unit values"],
  "catalog.from_day": ["{day} alkaen {amount}", "från {day} {amount}", "from {day}: {amount}"],
  "catalog.change_value": ["Uusi yksikköarvo euroina: {service}", "Nytt enhetsvärde i euro: {service}", "New unit value in euros: {service}"],
  "catalog.change_from": ["Voimassa alkaen: {service}", "Gäller från: {service}", "In force from: {service}"],
  "catalog.change_submit": ["Muuta yksikköarvo", "Ändra enhetsvärdet", "Change the unit value"],
  "catalog.changed": ["Palvelun {service} yksikköarvo on {day} alkaen {amount}.", "Enhetsvärdet för {service} är {amount} från {day}.", "{service}'s unit value is {amount} from {day}."],
  "catalog.new": ["Uusi palvelu luetteloon", "Ny tjänst i katalogen", "New service in the catalog"],
  "catalog.new_code": ["Tunnus (esim. home_help)", "Kod (t.ex. home_help)", "Code (e.g. home_help)"],
  "catalog.name_fi": ["Nimi suomeksi", "Namn på finska", "Name in Finnish"],
  "catalog.name_sv": ["Nimi ruotsiksi", "Namn på svenska", "Name in Swedish"],
  "catalog.name_en": ["Nimi englanniksi (vapaaehtoinen)", "Namn på engelska (frivilligt)", "Name in English (optional)"],
  "catalog.new_value": ["Yksikköarvo euroina", "Enhetsvärde i euro", "Unit value in euros"],
  "catalog.create": ["Lisää luetteloon", "Lägg till i katalogen", "Add to the catalog"],
  "catalog.created": ["Palvelu {service} lisätty luetteloon.", "Tjänsten {service} tillagd i katalogen.", "Service {service} added to the catalog."],
  "catalog.offers": ["Tarjoukset", "Erbjudanden", "Offers"],
  "catalog.offers_caption": ["Hyväksyttyjen palveluntuottajien voimassa olevat tarjoukset", "Godkända producenters gällande erbjudanden", "Active offers of approved providers"],
  "catalog.offers_none": ["Ei tarjouksia.", "Inga erbjudanden.", "No offers."],
  "catalog.offers_more": ["Näytetään 200 ensimmäistä tarjousta.", "De första 200 erbjudandena visas.", "Showing the first 200 offers."],
  "catalog.price": ["Hinta", "Pris", "Price"],
  "catalog.own_share": ["Omavastuu", "Egen andel", "Own share"],
  "catalog.where": ["Kunnat", "Kommuner", "Municipalities"],
  "catalog.languages": ["Kielet", "Språk", "Languages"],
  "catalog.address": ["Osoite", "Adress", "Address"],
});

const state = { services: [], categories: new Map(), offers: [], more: false, places: new Map() };
const euros = (cents) => formatEuros(cents, language());
const perUnit = (cents, unit) => t("catalog.per_unit", { amount: euros(cents), unit: unitName(unit) });

const token = () => tokenFor("admin");

async function load() {
  if (!signedInAs("admin")) return;
  try {
    const [services, categories, offers, places] = await Promise.all([
      request("GET", "/v1/services?limit=200", { token: token() }),
      request("GET", "/v1/categories", { token: token() }),
      request("GET", "/v1/offers?limit=200", { token: token() }),
      municipalities(token()),
    ]);
    state.services = services.data;
    state.categories = new Map(categories.data.map((category) => [category.code, category.name]));
    state.offers = offers.data;
    state.more = Boolean(offers.next_cursor);
    state.places = places;
  } catch (error) {
    say($("#catalog-message"), problemText(error), "error");
    return;
  }
  render();
}

function table(id, caption, headings, rows) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    el("table", { id, class: "stack" },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, headings.map(([key, number]) => el("th", { scope: "col", class: number ? "number" : null, text: t(key) })))),
      el("tbody", {}, rows)));
}

function render() {
  const today = new Date().toISOString().slice(0, 10);
  const serviceRows = state.services.map((service) => {
    const name = serviceName(service);
    const valueId = `unit-value-${service.id}`;
    const fromId = `unit-value-from-${service.id}`;
    const form = el("form", { class: "inline-form", novalidate: true },
      el("label", { for: valueId, text: t("catalog.change_value", { service: name }) }),
      el("input", { id: valueId, name: "unit_value", inputmode: "decimal", autocomplete: "off", required: true }),
      el("label", { for: fromId, text: t("catalog.change_from", { service: name }) }),
      el("input", { id: fromId, name: "valid_from", type: "date", min: today, required: true }),
      el("button", { type: "submit", class: "secondary", text: t("catalog.change_submit") }));
    onSubmit(form, (fields) => changeValue(service, fields));
    return el("tr", { dataset: { serviceCode: service.code } },
      el("td", { text: name }),
      el("td", { text: service.code }),
      el("td", { text: state.categories.get(service.category) || service.category }),
      el("td", { text: unitName(service.unit) }),
      el("td", { class: "number", text: service.unit_value === null ? "–" : euros(service.unit_value) }),
      el("td", { text: service.unit_values.map((value) => t("catalog.from_day", {
        day: localDate(`${value.valid_from}T12:00:00Z`, language()), amount: euros(value.unit_value) })).join("; ") }),
      el("td", {}, form));
  });
  fill($("#catalog-services"),
    serviceRows.length ? table("service-table", t("catalog.services"), [
      ["catalog.name"], ["catalog.code"], ["catalog.category"], ["catalog.unit"], ["catalog.unit_value", true], ["catalog.history"], ["common.actions"]], serviceRows)
      : el("p", { text: t("catalog.none") }));
  if (serviceRows.length) labelCells($("#service-table"));

  const category = $("#service-category");
  const chosen = category.value;
  category.replaceChildren(...[...state.categories].map(([code, name]) => el("option", { value: code, text: name })));
  if (state.categories.has(chosen)) category.value = chosen;

  const offerRows = state.offers.map((offer) => el("tr", { dataset: { offerId: offer.offer_id } },
    el("td", { text: serviceName(offer) }),
    el("td", { text: offer.provider_name }),
    el("td", { class: "number", text: perUnit(offer.unit_price, offer.unit) }),
    el("td", { class: "number", text: perUnit(offer.unit_value, offer.unit) }),
    el("td", { class: "number", text: euros(offer.own_share_per_unit) }),
    el("td", { text: placeNames(offer.municipalities, state.places) || "–" }),
    el("td", { text: offer.languages.map(languageName).join(", ") || "–" }),
    el("td", { text: offer.address || "–" })));
  fill($("#catalog-offers"),
    el("h3", { text: t("catalog.offers") }),
    offerRows.length ? table("all-offers-table", t("catalog.offers_caption"), [
      ["catalog.name"], ["common.provider"], ["catalog.price", true], ["catalog.unit_value", true], ["catalog.own_share", true],
      ["catalog.where"], ["catalog.languages"], ["catalog.address"]], offerRows) : el("p", { text: t("catalog.offers_none") }),
    state.more ? el("p", { class: "help", text: t("catalog.offers_more") }) : null);
  if (offerRows.length) labelCells($("#all-offers-table"));
}

async function changeValue(service, fields) {
  const message = $("#catalog-message");
  const cents = parseEuros(fields.get("unit_value"));
  if (cents === null || cents <= 0) {
    say(message, t("provider.charge.bad_amount"), "error");
    return;
  }
  const day = fields.get("valid_from");
  try {
    await request("POST", `/v1/services/${encodeURIComponent(service.id)}/unit-values`, { token: token(), body: { unit_value: cents, valid_from: day } });
    say(message, t("catalog.changed", { service: serviceName(service), day: localDate(`${day}T12:00:00Z`, language()), amount: euros(cents) }), "ok");
  } catch (error) {
    say(message, problemText(error), "error");
  }
  await load();
}

async function createService(form) {
  const message = $("#catalog-message");
  const cents = parseEuros(form.get("unit_value"));
  if (cents === null || cents <= 0) {
    say(message, t("provider.charge.bad_amount"), "error");
    $("#service-value").focus();
    return;
  }
  const name = { fi: form.get("name_fi").trim(), sv: form.get("name_sv").trim() };
  if (form.get("name_en").trim()) name.en = form.get("name_en").trim();
  const body = { code: form.get("code").trim(), category: form.get("category"), name, unit: form.get("unit"), unit_value: cents };
  try {
    const service = await request("POST", "/v1/services", { token: token(), body });
    say(message, t("catalog.created", { service: serviceName(service) }), "ok");
    $("#service-form").reset();
  } catch (error) {
    say(message, problemText(error), "error");
  }
  await load();
}

function build() {
  const field = (id, name, key, attributes = {}) => [
    el("label", { for: id, text: t(key) }),
    el("input", { id, name, autocomplete: "off", ...attributes })];
  const form = el("form", { id: "service-form", novalidate: true },
    el("h3", { text: t("catalog.new") }),
    field("service-code", "code", "catalog.new_code", { spellcheck: "false", required: true }),
    el("label", { for: "service-category", text: t("catalog.category") }),
    el("select", { id: "service-category", name: "category", required: true }),
    field("service-name-fi", "name_fi", "catalog.name_fi", { required: true, lang: "fi" }),
    field("service-name-sv", "name_sv", "catalog.name_sv", { required: true, lang: "sv" }),
    field("service-name-en", "name_en", "catalog.name_en", { lang: "en" }),
    el("label", { for: "service-unit", text: t("catalog.unit") }),
    el("select", { id: "service-unit", name: "unit" }, UNITS.map((unit) => el("option", { value: unit, text: unitName(unit) }))),
    field("service-value", "unit_value", "catalog.new_value", { inputmode: "decimal", required: true }),
    el("button", { type: "submit", text: t("catalog.create") }));
  onSubmit(form, createService);
  fill($("#catalog-body"),
    el("p", { text: t("catalog.intro") }),
    el("div", { id: "catalog-services" }),
    el("p", { id: "catalog-message", class: "message", role: "status", "aria-live": "polite", hidden: true }),
    form,
    el("div", { id: "catalog-offers" }));
}

function start() {
  const root = document.getElementById("catalog");
  if (!root) return;
  build();
  onLanguageChange(() => { build(); render(); });
  new MutationObserver(() => { if (!root.hidden) load(); }).observe(root, { attributes: true, attributeFilter: ["hidden"] });
  if (!root.hidden) load();
}

start();
