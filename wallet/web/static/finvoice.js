// A Finvoice 3.0 invoice for a settlement batch, made in the browser for a provider without
// invoicing software of its own: the seller, its account, the amount and the batch's reference
// (SPY: the Finnish viitenumero), which is what the organizer's reconciliation matches on.
// Built with the DOM's XML serializer: names and text are escaped, never pasted into markup.

const VAT_FREE_TEXT = "Arvonlisäveroton sosiaalihuoltopalvelu (AVL 37 §)";
const PAYMENT_DAYS = 14;

function eurosText(cents) {
  const whole = (cents - (cents % 100)) / 100;
  return `${whole},${String(cents % 100).padStart(2, "0")}`;
}

function ccyymmdd(date) {
  return `${date.getFullYear()}${String(date.getMonth() + 1).padStart(2, "0")}${String(date.getDate()).padStart(2, "0")}`;
}

export function finvoiceFileName(settlement) {
  return `lasku-${settlement.reference}.xml`;
}

export function finvoice(provider, settlement, { buyer, articleName, today = new Date() }) {
  if (!(settlement.amount > 0)) throw new Error("only a batch owed to the provider is invoiced");
  const due = new Date(today.getFullYear(), today.getMonth(), today.getDate() + PAYMENT_DAYS);
  const amount = eurosText(settlement.amount);
  const documentNode = document.implementation.createDocument(null, "Finvoice", null);
  const root = documentNode.documentElement;
  root.setAttribute("Version", "3.0");

  const add = (parent, name, text = null, attributes = {}) => {
    const element = documentNode.createElement(name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== null) element.textContent = text;
    parent.append(element);
    return element;
  };
  const money = (parent, name, text) => add(parent, name, text, { AmountCurrencyIdentifier: "EUR" });
  const day = (parent, name, date) => add(parent, name, ccyymmdd(date), { Format: "CCYYMMDD" });

  const seller = add(root, "SellerPartyDetails");
  add(seller, "SellerPartyIdentifier", provider.business_id);
  add(seller, "SellerOrganisationName", provider.name);
  const account = add(add(root, "SellerInformationDetails"), "SellerAccountDetails");
  add(account, "SellerAccountID", provider.iban, { IdentificationSchemeName: "IBAN" });
  add(add(root, "BuyerPartyDetails"), "BuyerOrganisationName", buyer);

  const details = add(root, "InvoiceDetails");
  add(details, "InvoiceTypeCode", "INV01");
  add(details, "InvoiceTypeCodeUN", "380");
  add(details, "InvoiceTypeText", "LASKU");
  add(details, "OriginCode", "Original");
  add(details, "InvoiceNumber", settlement.reference);
  day(details, "InvoiceDate", today);
  money(details, "InvoiceTotalVatExcludedAmount", amount);
  money(details, "InvoiceTotalVatAmount", "0,00");
  money(details, "InvoiceTotalVatIncludedAmount", amount);
  const vat = add(details, "VatSpecificationDetails");
  money(vat, "VatBaseAmount", amount);
  add(vat, "VatRatePercent", "0");
  add(vat, "VatCode", "E");
  money(vat, "VatRateAmount", "0,00");
  add(vat, "VatFreeText", VAT_FREE_TEXT);
  const terms = add(details, "PaymentTermsDetails");
  add(terms, "PaymentTermsFreeText", `${PAYMENT_DAYS} pv netto`);
  day(terms, "InvoiceDueDate", due);

  const row = add(root, "InvoiceRow");
  add(row, "ArticleName", articleName);
  add(row, "InvoicedQuantity", String(settlement.count), { QuantityUnitCode: "kpl" });
  add(row, "RowVatRatePercent", "0");
  add(row, "RowVatCode", "E");
  money(row, "RowAmount", amount);

  const epi = add(root, "EpiDetails");
  const identification = add(epi, "EpiIdentificationDetails");
  day(identification, "EpiDate", today);
  add(identification, "EpiReference", settlement.reference);
  const party = add(epi, "EpiPartyDetails");
  add(add(party, "EpiBfiPartyDetails"), "EpiBfiIdentifier");
  const beneficiary = add(party, "EpiBeneficiaryPartyDetails");
  add(beneficiary, "EpiNameAddressDetails", provider.name);
  add(beneficiary, "EpiBei", provider.business_id);
  add(beneficiary, "EpiAccountID", provider.iban, { IdentificationSchemeName: "IBAN" });
  const instruction = add(epi, "EpiPaymentInstructionDetails");
  add(instruction, "EpiRemittanceInfoIdentifier", settlement.reference, { IdentificationSchemeName: "SPY" });
  money(instruction, "EpiInstructedAmount", amount);
  add(instruction, "EpiCharge", "SLEV", { ChargeOption: "SLEV" });
  day(instruction, "EpiDateOptionDate", due);

  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(documentNode)}\n`;
}

// Hand a text to the browser as a file to save.
export function saveFile(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
