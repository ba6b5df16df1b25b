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

/** Returns an amount in 10^-7 units as exact decimal text without trailing zeros ("12.5"),
 * as the CLI prints it (constellation_client/amounts.py format_amount). */
export function formatAmount(units) {
  const value = BigInt(units);
  const sign = value < 0n ? "-" : "";
  const absolute = value < 0n ? -value : value;
  const whole = absolute / UNITS_PER_WHOLE;
  const fraction = (absolute % UNITS_PER_WHOLE).toString().padStart(DECIMALS, "0").replace(/0+$/, "");
  return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/** The default tick is 0.001 (exchange.core.amounts.TICK_SIZE_DEFAULT): prices show 3 decimals. */
export const PRICE_DECIMALS = 3;
export const TICK_UNITS = 10_000n;

/** Returns an integer price in 10^-7 quote units with the tick's decimals ("2.000"). */
export function formatPrice(units) {
  const value = BigInt(units);
  const whole = value / UNITS_PER_WHOLE;
  const fraction = (value % UNITS_PER_WHOLE).toString().padStart(DECIMALS, "0");
  return `${whole}.${fraction.slice(0, PRICE_DECIMALS)}`;
}

/** Returns a decimal price text of the market feeds ("0.1") with the tick's decimals. */
export function formatPriceText(text) {
  if (text === null || text === undefined) return "—";
  const value = Number(text);
  return Number.isFinite(value) ? value.toFixed(PRICE_DECIMALS) : String(text);
}

/** Returns the price in 10^-7 units the node will use for a typed price (rounded to the
 * tick, half to even as the engine does it closely enough for a preview), or null. */
export function priceUnits(text) {
  const value = Number(String(text).trim());
  if (!Number.isFinite(value) || value <= 0) return null;
  const ticks = Math.round((value * 1e7) / Number(TICK_UNITS));
  return BigInt(ticks) * TICK_UNITS;
}

/** Tells whether a typed price has more decimals than the tick (the node would round it). */
export function roundsToTick(text) {
  const match = /^\s*\d*\.(\d*)\s*$/.exec(String(text));
  return Boolean(match && match[1].replace(/0+$/, "").length > PRICE_DECIMALS);
}
