// Money as people type it and read it. Integer cents throughout: no floating point near money.

const TYPED = /^(\d{1,3}(?:[ \u00a0\u202f]?\d{3})*|\d+)(?:[,.](\d{1,2}))?$/;
export const MAX_CENTS = 100_000_000_00;

// "12,50", "12.50", "12,5", "1 234,50 €", "12" -> cents; null when it is not an amount of euros.
export function parseEuros(text) {
  const cleaned = String(text).trim().replace(/\s*(€|eur|e)$/i, "").trim();
  const match = TYPED.exec(cleaned);
  if (!match) return null;
  const whole = match[1].replace(/[ \u00a0\u202f]/g, "");
  const fraction = (match[2] || "").padEnd(2, "0");
  const cents = Number(whole) * 100 + Number(fraction);  // integers: exact well below 2^53
  if (!Number.isSafeInteger(cents) || cents > MAX_CENTS) return null;
  return cents;
}

// 1250 -> "12,50 €" (fi, sv) or "€12.50" (en); signed when asked: "+12,50 €", "−12,50 €".
export function formatEuros(cents, language = "fi", { signed = false } = {}) {
  const negative = cents < 0;
  const absolute = Math.abs(cents);
  const whole = String((absolute - (absolute % 100)) / 100).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
  const fraction = String(absolute % 100).padStart(2, "0");
  const sign = negative ? "\u2212" : signed && cents > 0 ? "+" : "";
  if (language === "en") return `${sign}€${whole.replace(/\u00a0/g, ",")}.${fraction}`;
  return `${sign}${whole},${fraction}\u00a0€`;
}

// "12,50" for an input's value (no currency sign, no grouping).
export function centsToInput(cents) {
  return `${(cents - (cents % 100)) / 100},${String(cents % 100).padStart(2, "0")}`;
}
