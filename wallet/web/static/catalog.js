// The service marketplace as the pages show it: service names in the page's language, units,
// quantities as people type them, the pricing rule of wallet/ledger/catalog.py (price_item) in
// integer cents, and municipality names (GET /v1/municipalities). Shared by the provider's offers,
// the organizer's catalog and the client's comparison.

import { request } from "./api.js";
import { addStrings, language, t } from "./i18n.js";

addStrings({
  "unit.hour": ["tunti", "timme", "hour"],
  "unit.visit": ["käynti", "besök", "visit"],
  "unit.day": ["päivä", "dag", "day"],
  "unit.trip": ["matka", "resa", "trip"],
  "unit.item": ["kpl", "st.", "item"],
  "unit.month": ["kuukausi", "månad", "month"],
  "catalog.per_unit": ["{amount} / {unit}", "{amount} / {unit}", "{amount} / {unit}"],
  "catalog.language.fi": ["suomi", "finska", "Finnish"],
  "catalog.language.sv": ["ruotsi", "svenska", "Swedish"],
  "catalog.language.en": ["englanti", "engelska", "English"],
});

export const UNITS = ["hour", "visit", "day", "trip", "item", "month"];
export const OFFER_LANGUAGES = ["fi", "sv", "en"];

export function serviceName(service) {
  const names = service.name || service.service_name || {};
  return names[language()] || names.fi || service.code || service.service;
}

export const unitName = (unit) => t(`unit.${unit}`);

export function languageName(code) {
  const key = `catalog.language.${code}`;
  const text = t(key);
  return text === key ? code : text;
}

// "1,5", "1.5", "2" -> hundredths of a unit (150, 150, 200); null when it is not a quantity the
// service accepts (positive, at most two decimals, at most `max` units).
export function parseQuantity(text, max = 1000) {
  const match = /^\s*(\d{1,4})(?:[.,](\d{1,2}))?\s*$/.exec(String(text));
  if (!match) return null;
  const hundredths = Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
  if (hundredths <= 0 || hundredths > max * 100) return null;
  return hundredths;
}

// 150 -> "1.5": the decimal string the API takes.
export function quantityText(hundredths) {
  const whole = Math.floor(hundredths / 100);
  const fraction = hundredths % 100;
  if (!fraction) return String(whole);
  return `${whole}.${String(fraction).padStart(2, "0").replace(/0$/, "")}`;
}

// The pricing rule, per item, in integer cents, rounded half up once per item: the budget pays
// min(price, value) x quantity, the client the rest of price x quantity (wallet.ledger.catalog).
export function priceItem(unitPrice, unitValue, hundredths) {
  const roundHalfUp = (cents, units) => Math.floor((cents * units + 50) / 100);
  const price = roundHalfUp(unitPrice, hundredths);
  const amount = roundHalfUp(Math.min(unitPrice, unitValue), hundredths);
  return { price, amount, ownShare: price - amount };
}

let places = null;

// Municipality names by code, asked once a page.
export async function municipalities(token) {
  if (!places) {
    const page = await request("GET", "/v1/municipalities", { token });
    places = new Map(page.data.map((place) => [place.code, place.name]));
  }
  return places;
}

export const placeNames = (codes, names) => codes.map((code) => (names && names.get(code)) || code).join(", ");
