// DOM helpers and the renderers of the page's tables; no protocol logic here.

import { formatAmount, formatPrice } from "./amounts.js";
import { STATUS_TEXT } from "./client.js";

export const $ = (selector) => document.querySelector(selector);

/** Returns a new element with text or children. */
export function element(tag, content = "", className = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (Array.isArray(content)) node.append(...content);
  else node.textContent = String(content);
  return node;
}

/** Replaces a table body's rows; each row is a list of cells (text or elements). */
export function fillTable(selector, rows, emptyText = "") {
  const body = $(`${selector} tbody`);
  body.replaceChildren();
  for (const cells of rows) {
    const row = element("tr");
    for (const cell of cells) row.append(cell instanceof Node ? wrapCell(cell) : element("td", cell));
    body.append(row);
  }
  if (!rows.length && emptyText) {
    const row = element("tr");
    const cell = element("td", emptyText, "hint");
    cell.colSpan = $(`${selector} thead tr`).children.length;
    row.append(cell);
    body.append(row);
  }
}

function wrapCell(node) {
  return node.tagName === "TD" ? node : element("td", [node]);
}

const GLOBAL_MESSAGES_MAX = 3;
const MESSAGE_SHOWN_MS = 15000;

/** Shows a message to the person; kind is "info", "success" or "error". With `near` (a panel
 * element or selector) it goes into that panel's own message line, replacing the previous
 * one, so an error stands next to the form that caused it (on a phone too). Every message
 * has a close button; at most GLOBAL_MESSAGES_MAX pile up at the top; only errors stay. */
export function say(text, kind = "info", near = null) {
  const panel = typeof near === "string" ? $(near) : near;
  const message = element("p", "", `message ${kind}`);
  const close = element("button", "×", "close");
  close.type = "button";
  close.title = "Close";
  close.setAttribute("aria-label", "Close this message");
  close.addEventListener("click", () => message.remove());
  message.append(element("span", text), close);
  if (panel) {
    let box = panel.querySelector(".panel-messages");
    if (!box) {
      box = element("div", "", "panel-messages");
      box.setAttribute("aria-live", "polite");
      panel.append(box);
    }
    box.replaceChildren(message);
  } else {
    const box = $("#messages");
    box.prepend(message);
    while (box.children.length > GLOBAL_MESSAGES_MAX) box.lastChild.remove();
  }
  if (kind !== "error") setTimeout(() => message.remove(), MESSAGE_SHOWN_MS);
  return message;
}

// Node descriptions use raw 10^-7 units; people read decimals (the CLI rewrites the same
// phrases: constellation_client/messages.py).
const INSUFFICIENT = /insufficient free balance in (\w+): (\d+) available, (\d+) needed/;
const REWRITES = [
  [
    /order quote amount (\d+) is below the minimum lot size (\d+)/,
    (m) => `the order's total (amount × price) is ${formatAmount(m[1])} in the quote asset, below the minimum lot of ${formatAmount(m[2])}`,
  ],
  [/price (\S+) is below half a tick \((\d+) units\)/, (m) => `price ${m[1]} is below half a tick (the tick is ${formatAmount(m[2])})`],
  [/price (\S+) exceeds the maximum of (\d+) units/, (m) => `price ${m[1]} exceeds the maximum price ${formatAmount(m[2])}`],
];

/** Returns a node description with its raw-unit phrases in decimals. */
export function humanize(description) {
  let text = description || "";
  for (const [pattern, rewrite] of REWRITES) text = text.replace(pattern, (...match) => rewrite(match));
  return text;
}

/** Returns a quantum's time (ms) as a local date and time. */
export function timeText(ms) {
  const moment = new Date(Number(ms));
  return `${moment.toLocaleDateString()} ${moment.toLocaleTimeString()}`;
}

/** Returns the sentence a person reads for a refused request. */
export function explainRefusal(what, status, description) {
  const insufficient = INSUFFICIENT.exec(description || "");
  if (insufficient) {
    const [, asset, free, needed] = insufficient;
    const detail = `you have ${formatAmount(free)} ${asset} available but ${formatAmount(needed)} are needed`;
    return `${what} was refused: not enough ${asset} (${detail}).`;
  }
  const general = STATUS_TEXT[status] || `error ${status}`;
  const reason = description ? `${humanize(description)} (${general})` : general;
  return `${what} was refused: ${reason}.`;
}

/** Renders balances; `known` false (not connected, or not read yet) is not "no balances". */
export function renderBalances(accountData, known = true) {
  const rows = (accountData ? accountData.balances : []).map((balance) => [
    balance.asset,
    formatAmount(balance.amount),
    formatAmount(balance.liabilities),
    formatAmount(balance.amount - balance.liabilities),
  ]);
  const empty = known ? "No balances yet: fund the account." : "Unknown: not connected to the node (the balances could not be read).";
  fillTable("#balances", rows, empty);
}

/** Renders the open orders, and one "cancel all" button per market that has some. */
export function renderOrders(accountData, onCancel, onCancelAll) {
  const orders = accountData ? accountData.orders : [];
  const rows = orders.map((order) => {
    const button = element("button", "Cancel", "small");
    button.type = "button";
    button.dataset.orderId = String(order.order_id);
    button.addEventListener("click", () => onCancel(order.order_id));
    const side = order.side === 1 ? "sell" : "buy";
    return [String(order.order_id), element("span", side, side), `${formatAmount(order.amount)} ${order.asset}`, formatPrice(order.price), button];
  });
  fillTable("#orders", rows, "No open orders.");
  const counts = new Map();
  for (const order of orders) counts.set(order.asset, (counts.get(order.asset) || 0) + 1);
  const buttons = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([asset, count]) => {
    const button = element("button", `Cancel all ${asset} orders (${count})`, "small danger");
    button.type = "button";
    button.dataset.asset = asset;
    button.title = `Cancels every open order of yours in the ${asset} market, in one request`;
    button.addEventListener("click", () => onCancelAll(asset));
    return button;
  });
  $("#cancel-all").replaceChildren(...buttons);
}

/** Returns the status cell text of a history row. */
export function statusText(entry) {
  if (entry.unverified) return "unverified";
  if (entry.rejected) return "rejected";
  if (entry.finalized) return "finalized";
  if (entry.acknowledged) return "acknowledged";
  return "sent";
}

/** Returns the majority the browser needs (the engine's rule: more than half). */
export function signaturesNeeded(auditorCount) {
  return Math.floor(Number(auditorCount) / 2) + 1;
}

/** Returns "2 of 3 (2 needed)": the count alone reads as if an auditor had failed. */
export function signaturesText(verified, auditorCount) {
  return `${verified} of ${auditorCount} (${signaturesNeeded(auditorCount)} needed)`;
}

export function renderHistory(entries) {
  const rows = entries.map((entry) => {
    const status = statusText(entry);
    let signatures = entry.auditorCount ? signaturesText(entry.signatures, entry.auditorCount) : "";
    if (entry.rejected || entry.unverified) signatures = "—";
    if (entry.stale && !entry.finalized) signatures += " — not final yet: do not rely on it";
    const columns = entry.columns || { amount: "—", price: "—", counterparty: "—" };
    return [
      entry.apex ? String(entry.apex) : "—",
      entry.time ? timeText(entry.time) : "",
      entry.label,
      columns.amount,
      columns.price,
      columns.counterparty,
      element("span", status, `status-${status}`),
      signatures,
    ];
  });
  fillTable("#history", rows, "Nothing yet.");
}

const side = (value) => (Number(value) === 1 ? "sell" : "buy");

const DESCRIBERS = {
  TradeEffect: (e, quote) =>
    `${Number(e.side) === 1 ? "sold" : "bought"} ${formatAmount(e.asset_amount)} ${e.asset} at ${formatPrice(e.price)} (${formatAmount(e.quote_amount)} ${quote}; order ${e.order_id})`,
  OrderPlacedEffect: (e) => `order ${e.order_id} rests: ${side(e.side)} ${formatAmount(e.amount)} ${e.asset} at ${formatPrice(e.price)}`,
  OrderRemovedEffect: (e) => `order ${e.order_id} left the book`,
  WithdrawalCreateEffect: (e) => `withdrawal of ${formatAmount(e.amount)} ${e.asset} (fee ${formatAmount(e.fee)}) requested`,
  WithdrawalRemoveEffect: (e) => `withdrawal of ${formatAmount(e.amount)} ${e.asset} ${e.is_successful ? "paid out" : "failed (unlocked)"}`,
  AccountCreateEffect: (e) => `account ${e.account} created`,
};

/** Returns what a quantum did to this account, in a trader's words, from its effects alone:
 * the same text live and after a reload (the history's labels must not change). Balance
 * updates that mirror a trade or a withdrawal are left out; the rest are "received"/"sent". */
export function describeEffects(group, quote = "") {
  const effects = group ? group.effects : [];
  const mirrored = effects.some((e) => e._type === "TradeEffect" || e._type === "WithdrawalRemoveEffect");
  const parts = [];
  for (const effect of effects) {
    const describe = DESCRIBERS[effect._type];
    if (describe) parts.push(describe(effect, quote));
    else if (effect._type === "BalanceUpdateEffect" && !mirrored) {
      parts.push(`${Number(effect.sign) === 0 ? "received" : "sent"} ${formatAmount(effect.amount)} ${effect.asset}`);
    }
  }
  return parts.length ? parts.join("; ") : NOTHING_CHANGED;
}

/** The history's words for a quantum that changed no balance of this account: its effects
 * cannot tell a balance read from an order that filled nothing. */
export const NOTHING_CHANGED = "no balance change (a balance read, or an order that filled nothing)";

/** Returns a sentence for each fill (trade effect) of an effects group. */
export function describeFills(group, quoteAsset) {
  const trades = (group ? group.effects : []).filter((effect) => effect._type === "TradeEffect");
  return trades.map((trade) => {
    const verb = Number(trade.side) === 1 ? "Sold" : "Bought";
    const price = formatPrice(trade.price);
    return `${verb} ${formatAmount(trade.asset_amount)} ${trade.asset} at ${price} ${quoteAsset} (order ${trade.order_id})`;
  });
}
