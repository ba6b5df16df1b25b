// The proof-of-reserves panel: the node's /api/constellation/reserves, shown as it answers
// (the node's word, like the node list): per asset the vaults against the liabilities
// (accounts + the constellation's fee account), the difference, at one finalized apex with
// its state hash. Self-contained: it needs nothing from app.js and app.js nothing from it.

import { formatAmount } from "./amounts.js";
import { nodeUrl } from "./node.js";

const REFRESH_MS = 10_000;

function amountText(text) {
  return text === null || text === undefined ? "unknown" : formatAmount(BigInt(text));
}

function cell(row, text, title = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (title) td.title = title;
  row.append(td);
}

function vaultTitle(asset) {
  return asset.providers
    .map((p) => `${p.provider} (${p.vault}) at cursor ${p.cursor}: ${p.error || amountText(p.balance)}`)
    .join("\n");
}

/** Renders one report into the panel's table and summary line. */
export function renderReserves(report, panel) {
  const body = panel.querySelector("tbody");
  body.replaceChildren();
  for (const asset of report.assets) {
    const row = document.createElement("tr");
    cell(row, asset.asset);
    cell(row, amountText(asset.vault), vaultTitle(asset));
    cell(row, amountText(asset.liabilities));
    cell(row, amountText(asset.accounts));
    cell(row, amountText(asset.fee_account));
    cell(row, amountText(asset.difference));
    const short = asset.difference === null || BigInt(asset.difference) < 0n;
    row.dataset.covered = short ? "no" : "yes";
    body.append(row);
  }
  panel.querySelector("#reserves-apex").textContent = String(report.apex);
  const hash = panel.querySelector("#reserves-hash");
  hash.textContent = `${report.state_hash.slice(0, 16)}…`;
  hash.title = report.state_hash;
}

async function refresh(panel) {
  const status = panel.querySelector("#reserves-status");
  try {
    const response = await fetch(nodeUrl("/api/constellation/reserves"));
    const report = await response.json();
    if (!response.ok) {
      status.textContent = report.description || `HTTP ${response.status}`;
      return;
    }
    renderReserves(report, panel);
    status.textContent = "";
  } catch (error) {
    status.textContent = `cannot read the reserves: ${error.message}`;
  }
}

function start() {
  const panel = document.getElementById("reserves-panel");
  if (!panel) return;
  panel.querySelector("#reserves-refresh").addEventListener("click", () => refresh(panel));
  refresh(panel);
  setInterval(() => refresh(panel), REFRESH_MS);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
