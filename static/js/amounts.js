// Exact conversion between decimal text and integer amounts in 10^-7 units (BigInt), as
// constellation_client/amounts.py: text with more than 7 decimals is refused, never rounded.

export const DECIMALS = 7;
const UNITS_PER_WHOLE = 10n ** 7n;
const AMOUNT_MAX = (1n << 64n) - 1n;

export class AmountError extends Error {
  name = "AmountError";
}

/** Returns the exact number of 10^-7 units written as decimal text (e.g. "12.5"). */
export function parseAmount(text) {
  const match = /^\s*(\d*)(?:\.(\d*))?\s*$/.exec(String(text));
  if (!match || (match[1] === "" && (match[2] || "") === "")) {
    throw new AmountError(`"${text}" is not a number`);
  }
  const fraction = match[2] || "";
  if (fraction.length > DECIMALS) {
    throw new AmountError(`"${text}" has more than ${DECIMALS} decimals`);
  }
  const units = BigInt(match[1] || "0") * UNITS_PER_WHOLE + BigInt(fraction.padEnd(DECIMALS, "0"));
  if (units > AMOUNT_MAX) throw new AmountError(`"${text}" is too large`);
  return units;
}

/** Returns a positive price as the double the wire carries (the node rounds it to the tick). */
export function parsePrice(text) {
  const value = Number(String(text).trim());
  if (String(text).trim() === "" || !Number.isFinite(value) || value <= 0) {
    throw new AmountError("the price must be a positive number");
  }
  return value;
}

/** Returns an amount in 10^-7 units as text with 7 decimals ("12.5000000"). */
export function formatAmount(units) {
  const value = BigInt(units);
  const sign = value < 0n ? "-" : "";
  const absolute = value < 0n ? -value : value;
  const whole = absolute / UNITS_PER_WHOLE;
  const fraction = (absolute % UNITS_PER_WHOLE).toString().padStart(DECIMALS, "0");
  return `${sign}${whole}.${fraction}`;
}

/** Returns an integer price in 10^-7 quote units per whole asset unit as decimal text. */
export function formatPrice(units) {
  return formatAmount(units).replace(/0+$/, "").replace(/\.$/, ".0");
}
