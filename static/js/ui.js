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

/** Shows a message to the person; kind is "info", "success" or "error". */
export function say(text, kind = "info") {
  const box = $("#messages");
  const message = element("p", text, `message ${kind}`);
  box.prepend(message);
  while (box.children.length > 6) box.lastChild.remove();
  if (kind !== "error") setTimeout(() => message.remove(), 15000);
}

// Node descriptions use raw 10^-7 units; people read decimals.
const INSUFFICIENT = /insufficient free balance in (\w+): (\d+) available, (\d+) needed/;

/** Returns the sentence a person reads for a refused request. */
export function explainRefusal(what, status, description) {
  const insufficient = INSUFFICIENT.exec(description || "");
  if (insufficient) {
    const [, asset, free, needed] = insufficient;
    const detail = `you have ${formatAmount(free)} ${asset} available but ${formatAmount(needed)} are needed`;
    return `${what} was refused: not enough ${asset} (${detail}).`;
  }
  const general = STATUS_TEXT[status] || `error ${status}`;
  const reason = description ? `${description} (${general})` : general;
  return `${what} was refused: ${reason}.`;
}

export function renderBalances(accountData) {
  const rows = (accountData ? accountData.balances : []).map((balance) => [
    balance.asset,
    formatAmount(balance.amount),
    formatAmount(balance.liabilities),
    formatAmount(balance.amount - balance.liabilities),
  ]);
  fillTable("#balances", rows, "No balances yet: fund the account.");
}

export function renderOrders(accountData, onCancel) {
  const rows = (accountData ? accountData.orders : []).map((order) => {
    const button = element("button", "Cancel", "small");
    button.type = "button";
    button.dataset.orderId = String(order.order_id);
    button.addEventListener("click", () => onCancel(order.order_id));
    const side = order.side === 1 ? "sell" : "buy";
    return [String(order.order_id), element("span", side, side), `${formatAmount(order.amount)} ${order.asset}`, formatPrice(order.price), button];
  });
  fillTable("#orders", rows, "No open orders.");
}

/** Returns the status cell text of a history row. */
export function statusText(entry) {
  if (entry.unverified) return "unverified";
  if (entry.rejected) return "rejected";
  if (entry.finalized) return "finalized";
  if (entry.acknowledged) return "acknowledged";
  return "sent";
}

export function renderHistory(entries) {
  const rows = entries.map((entry) => {
    const status = statusText(entry);
    let signatures = entry.auditorCount ? `${entry.signatures} of ${entry.auditorCount}` : "";
    if (entry.rejected || entry.unverified) signatures = "—";
    return [
      entry.apex ? String(entry.apex) : "—",
      entry.label,
      element("span", status, `status-${status}`),
      signatures,
    ];
  });
  fillTable("#history", rows, "Nothing yet.");
}

/** Returns a short description of a quantum from its effects on this account. */
export function describeEffects(group) {
  const kinds = new Set((group ? group.effects : []).map((effect) => effect._type));
  if (kinds.has("TradeEffect")) return "trade";
  if (kinds.has("OrderPlacedEffect")) return "order placed";
  if (kinds.has("OrderRemovedEffect")) return "order removed";
  if (kinds.has("WithdrawalCreateEffect")) return "withdrawal requested";
  if (kinds.has("WithdrawalRemoveEffect")) return "withdrawal completed";
  if (kinds.has("AccountCreateEffect")) return "account created (deposit)";
  if (kinds.has("BalanceUpdateEffect")) return "balance change";
  return "account data";
}

/** Returns a sentence for each fill (trade effect) of an effects group. */
export function describeFills(group, quoteAsset) {
  const trades = (group ? group.effects : []).filter((effect) => effect._type === "TradeEffect");
  return trades.map((trade) => {
    const verb = trade.side === 1 ? "Sold" : "Bought";
    const price = formatPrice(trade.price);
    return `${verb} ${formatAmount(trade.asset_amount)} ${trade.asset} at ${price} ${quoteAsset} (order ${trade.order_id})`;
  });
}
