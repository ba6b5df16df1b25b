// The history's columns in a trader's words (amount, price, counterparty) from a quantum's
// proven own effects, and the order outcome sentence after finality. Pure functions: no DOM.
//
// Who the counterparty is comes from what the proof shows: a trade's is the book; a
// withdrawal names its provider; a history item carries its quantum, checked against the
// signed quantum hash (verify.js checkHistoryItem), which names a payment's payer and payee,
// a deposit's provider and transactions, a withdrawal's provider and destination
// (provenCounterparty). A live result carries no quantum: its payment names the other
// account's id from the other effects groups of the same proven quantum (client.js
// RequestResult.otherAccounts) until the history is loaded again. CounterpartyMemory keeps
// what was seen live, a fallback for an item without its quantum (above the item's bound).

import { formatAmount, formatPrice } from "./amounts.js";
import { encodePublicKey, equalBytes, toHex } from "./keys.js";

const SELL = 1;
const MINUS = 1;
const DASH = "—";

const sum = (values) => values.reduce((total, value) => total + BigInt(value), 0n);

/** Returns "2.000", or "2.000–2.500 (avg 2.250)" for fills at several prices. */
function fillPrices(trades) {
  const prices = [...new Set(trades.map((trade) => BigInt(trade.price)))].sort((a, b) => (a < b ? -1 : 1));
  if (prices.length === 1) return formatPrice(prices[0]);
  const amount = sum(trades.map((trade) => trade.asset_amount));
  const average = amount ? (sum(trades.map((trade) => trade.quote_amount)) * 10_000_000n) / amount : 0n;
  return `${formatPrice(prices[0])}–${formatPrice(prices.at(-1))} (avg ${formatPrice(average)})`;
}

/** Returns "+10 XLM, −20 USD" for the trades' net flows. */
function tradeFlows(trades, quote) {
  const flows = new Map();
  const add = (asset, amount) => flows.set(asset, (flows.get(asset) || 0n) + amount);
  for (const trade of trades) {
    const buying = Number(trade.side) !== SELL;
    add(trade.asset, buying ? BigInt(trade.asset_amount) : -BigInt(trade.asset_amount));
    add(quote, buying ? -BigInt(trade.quote_amount) : BigInt(trade.quote_amount));
  }
  return [...flows].map(([asset, amount]) => signed(amount, asset)).join(", ");
}

function signed(amount, asset) {
  return `${amount < 0n ? "−" : "+"}${formatAmount(amount < 0n ? -amount : amount)} ${asset}`;
}

/** Returns the counterparty of a payment or deposit from the accounts the live result showed
 * (`others`: ids of the other accounts' groups, `known`: the destination key this page sent
 * to), or null when they are not known. */
function transferCounterparty(received, others, known, provider) {
  if (others === undefined || others === null) return null;
  if (others.length === 1) {
    const key = known ? ` (${known.slice(0, 6)}…${known.slice(-4)})` : "";
    return `${received ? "from" : "to"} account ${others[0]}${key}`;
  }
  if (others.length === 0 && received) return provider ? `deposit via provider ${provider}` : "a deposit through a payment provider";
  return `accounts ${others.join(", ")}`;
}

/** Returns "GABCDE…WXYZ" for a raw public key (the full key is in the row's title). */
function shortKey(raw) {
  const key = encodePublicKey(raw);
  return `${key.slice(0, 6)}…${key.slice(-4)}`;
}

const HASH_SHOWN = 16;

/**
 * Returns the other side of a checked quantum (verify.js itemQuantum) for the account
 * `ownKey` (raw bytes): {kind, text, account (G... key of a payment's other side), provider,
 * external (a withdrawal's destination, a deposit's transaction hashes)}, or null when the
 * quantum names none (an order, a cancel, a balance read). Same words as the Python client
 * (constellation_client/counterparty.py), keys shortened.
 */
export function provenCounterparty(quantum, ownKey) {
  const body = quantum ? quantum.body : null;
  const message = body && body.request ? body.request.message : null;
  if (body?._type === "RequestQuantum" && message._type === "PaymentRequest") {
    if (equalBytes(message.account, ownKey)) {
      return { kind: "payment sent", text: `paid to ${shortKey(message.destination)}`, account: encodePublicKey(message.destination) };
    }
    if (equalBytes(message.destination, ownKey)) {
      return { kind: "payment received", text: `paid by ${shortKey(message.account)}`, account: encodePublicKey(message.account) };
    }
    return { kind: "payment", text: `payment from ${shortKey(message.account)} to ${shortKey(message.destination)}` };
  }
  if (body?._type === "WithdrawalQuantum" && message._type === "WithdrawalRequest") {
    const text = `withdrawal via provider ${message.provider} to ${message.destination}`;
    return { kind: "withdrawal", text, provider: message.provider, external: message.destination };
  }
  if (body?._type === "DepositQuantum") {
    const hashes = body.items.filter((item) => equalBytes(item.destination, ownKey)).map((item) => toHex(item.tx_hash));
    if (!hashes.length) {
      return { kind: "withdrawal outcome", text: `withdrawal outcome from provider ${body.provider}`, provider: body.provider };
    }
    const shown = hashes.map((hash) => (hash.length > HASH_SHOWN ? `${hash.slice(0, HASH_SHOWN)}…` : hash)).join(", ");
    const text = `deposit via provider ${body.provider} (transaction ${shown})`;
    return { kind: "deposit", text, provider: body.provider, external: hashes.join(",") };
  }
  return null;
}

/**
 * Returns {amount, price, counterparty} for one history row. `context`: {quote,
 * proven (provenCounterparty of the item's checked quantum, reloaded history only),
 * others (other account ids, live results only), destination (the key this page paid),
 * remembered (what a live result showed for this apex), depositProvider(asset)}.
 */
export function historyColumns(group, context) {
  const effects = group ? group.effects : [];
  const { quote } = context;
  const trades = effects.filter((e) => e._type === "TradeEffect");
  if (trades.length) {
    return { amount: tradeFlows(trades, quote), price: `${fillPrices(trades)} ${quote}`, counterparty: "the book" };
  }
  // The order that rests (when an order also cancelled one of ours), else the removed one.
  const order = effects.find((e) => e._type === "OrderPlacedEffect") || effects.find((e) => e._type === "OrderRemovedEffect");
  if (order) {
    const removed = effects.filter((e) => e._type === "OrderRemovedEffect").length;
    const amount = order._type === "OrderRemovedEffect" && removed > 1 ? `${removed} orders` : `${formatAmount(order.amount)} ${order.asset}`;
    return { amount, price: `${formatPrice(order.price)} ${quote}`, counterparty: "the book" };
  }
  const withdrawal = effects.find((e) => e._type === "WithdrawalCreateEffect" || e._type === "WithdrawalRemoveEffect");
  if (withdrawal) {
    const fee = BigInt(withdrawal.fee) ? ` (+ fee ${formatAmount(withdrawal.fee)})` : "";
    const amount = `${formatAmount(withdrawal.amount)} ${withdrawal.asset}${fee}`;
    return { amount, price: DASH, counterparty: `provider ${withdrawal.provider} → ${withdrawal.destination}` };
  }
  const updates = effects.filter((e) => e._type === "BalanceUpdateEffect");
  if (updates.length) {
    const amount = updates.map((e) => signed(Number(e.sign) === MINUS ? -BigInt(e.amount) : BigInt(e.amount), e.asset)).join(", ");
    const received = Number(updates[0].sign) !== MINUS;
    const provider = received ? context.depositProvider(updates[0].asset) : null;
    const live = transferCounterparty(received, context.others, context.destination, provider);
    const fallback = received ? "another account or a provider (not in the reloaded proof)" : "another account (a payment)";
    return { amount, price: DASH, counterparty: context.proven?.text || live || context.remembered || fallback };
  }
  return { amount: DASH, price: DASH, counterparty: DASH };
}

/** Remembers the counterparties this browser saw in live proven results, per constellation
 * and key, so a reloaded history still names them (at most MAX apexes, the newest kept). */
export class CounterpartyMemory {
  static MAX = 500;

  constructor(storage, scope) {
    this.storage = storage;
    this.key = `constellation.counterparties.${scope}`;
    try {
      this.entries = JSON.parse(storage.getItem(this.key) || "{}");
    } catch {
      this.entries = {};
    }
  }

  get(apex) {
    return this.entries[String(apex)] || null;
  }

  set(apex, text) {
    if (!apex || !text || this.entries[String(apex)] === text) return;
    this.entries[String(apex)] = text;
    const apexes = Object.keys(this.entries).sort((a, b) => Number(BigInt(a) - BigInt(b)));
    for (const old of apexes.slice(0, Math.max(0, apexes.length - CounterpartyMemory.MAX))) delete this.entries[old];
    this.storage.setItem(this.key, JSON.stringify(this.entries));
  }
}

const TIF = { GOOD_TILL_CANCELLED: 0, IMMEDIATE_OR_CANCEL: 1, FILL_OR_KILL: 2, POST_ONLY: 3 };

/** One line per time in force, shown under the form's choice. */
export const TIME_IN_FORCE_HELP = {
  [TIF.GOOD_TILL_CANCELLED]: "Good till cancelled: fills what it can now; the rest rests on the book until filled or cancelled.",
  [TIF.IMMEDIATE_OR_CANCEL]: "Immediate or cancel: fills what it can now; the rest is cancelled at once (nothing rests).",
  [TIF.FILL_OR_KILL]: "Fill or kill: fills the whole amount now or nothing at all (killed; nothing rests).",
  [TIF.POST_ONLY]: "Post only: rests on the book as a maker; refused if it would trade at once.",
};

/**
 * Returns {kind, text} for what an accepted order did, from its proven own effects: kind is
 * "filled", "partly-resting", "partly-cancelled", "resting", "nothing-filled" or "killed".
 * `order`: {amount (units), timeInForce, asset}.
 */
export function orderOutcome(group, order, quote) {
  const effects = group ? group.effects : [];
  const taken = effects.filter((e) => e._type === "TradeEffect" && e.is_new_order);
  const filled = sum(taken.map((e) => e.asset_amount));
  const placed = effects.find((e) => e._type === "OrderPlacedEffect");
  const selfCancelled = effects.filter((e) => e._type === "OrderRemovedEffect");
  const { amount, asset } = order;
  const tif = Number(order.timeInForce);
  const of = `${formatAmount(filled)} of ${formatAmount(amount)} ${asset}`;
  const at = taken.length ? ` at ${fillPrices(taken)} ${quote}` : "";
  const rest = formatAmount(amount - filled);
  let kind;
  let text;
  if (filled === amount) {
    [kind, text] = ["filled", `Order filled: ${of}${at}.`];
  } else if (filled > 0n && placed) {
    [kind, text] = ["partly-resting", `Order partly filled: ${of}${at}; the rest (${rest}) rests on the book (order ${placed.order_id}).`];
  } else if (filled > 0n) {
    [kind, text] = ["partly-cancelled", `Order partly filled: ${of}${at}; the rest (${rest}) was cancelled (immediate or cancel).`];
  } else if (placed) {
    const maker = tif === TIF.POST_ONLY ? "post-only order rests on the book as a maker" : "order rests on the book";
    [kind, text] = ["resting", `Nothing filled yet: the ${maker} (order ${placed.order_id}).`];
  } else if (tif === TIF.FILL_OR_KILL) {
    [kind, text] = ["killed", `Killed: the fill-or-kill order could not fill all ${formatAmount(amount)} ${asset} at once, so nothing was filled and nothing rests.`];
  } else {
    [kind, text] = ["nothing-filled", "Nothing filled: no order on the book matched your price, so the immediate-or-cancel order was cancelled."];
  }
  for (const removed of selfCancelled) {
    const side = Number(removed.side) === SELL ? "sell" : "buy";
    text += ` Your resting order ${removed.order_id} (${side} ${formatAmount(removed.amount)} ${removed.asset} at ${formatPrice(removed.price)}) was cancelled: this order reached it (self-trade prevention).`;
  }
  return { kind, text, selfTrade: selfCancelled.length > 0 };
}
