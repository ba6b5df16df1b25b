// The trader's page: key management, constellation info, faucet, balances, orders, market
// data, payments, withdrawals and the history of the account's quanta with the finality this
// browser verified itself. Protocol work lives in client.js; rendering helpers in ui.js.

import { AmountError, formatAmount, parseAmount, parsePrice } from "./amounts.js";
import { ConstellationClient, STATUS_TEXT } from "./client.js";
import { InvalidKey, KeyPair } from "./keys.js";
import { MarketView } from "./market.js";
import * as ui from "./ui.js";
import { checkHistoryItem } from "./verify.js";

const { $ } = ui;
const SECRET_STORAGE_KEY = "constellation.secret";
const NODES_REFRESH_MS = 5000;
const state = { info: null, keyPair: null, client: null, accountData: null, history: new Map() };
const origin = window.location.origin;

// --- constellation info -------------------------------------------------------------------

async function loadInfo() {
  const response = await fetch("/api/constellation/info");
  state.info = await response.json();
  $("#node-state").textContent = state.info.state;
  $("#node-apex").textContent = String(state.info.apex ?? "—");
  $("#quote-asset").textContent = state.info.quote_asset || "—";
  for (const node of document.querySelectorAll(".quote")) node.textContent = state.info.quote_asset;
  fillAssetSelects();
}

function fillAssetSelects() {
  const assets = (state.info.assets || []).filter((asset) => !asset.is_suspended);
  const codes = assets.map((asset) => asset.code);
  const markets = assets.filter((asset) => !asset.is_quote_asset).map((asset) => asset.code);
  setOptions("#faucet-asset", codes);
  setOptions("#pay-asset", codes);
  setOptions("#order-asset", markets);
  setOptions("#market", markets);
  const providers = (state.info.providers || []).map((provider) => provider.id);
  setOptions("#withdraw-provider", providers);
  fillWithdrawAssets();
}

function setOptions(selector, values) {
  const select = $(selector);
  const current = select.value;
  select.replaceChildren(...values.map((value) => new Option(value, value)));
  if (values.includes(current)) select.value = current;
}

function fillWithdrawAssets() {
  const provider = (state.info.providers || []).find((p) => p.id === $("#withdraw-provider").value);
  setOptions("#withdraw-asset", provider ? provider.assets.map((asset) => asset.asset) : []);
}

async function refreshNodes() {
  try {
    const response = await fetch("/api/constellation/nodes");
    const { nodes } = await response.json();
    const rows = nodes.map((node) => [
      String(node.index),
      ui.element("code", `${node.public_key.slice(0, 8)}… ${node.address}`),
      node.is_alpha ? "alpha" : "auditor",
      node.state,
      String(node.apex ?? "—"),
    ]);
    ui.fillTable("#nodes", rows, "Not initialized.");
    const own = await (await fetch("/api/constellation/info")).json();
    $("#node-state").textContent = own.state;
    $("#node-apex").textContent = String(own.apex ?? "—");
  } catch (error) {
    $("#node-state").textContent = `unreachable (${error.message})`;
  }
}

// --- keys ---------------------------------------------------------------------------------

async function useKey(keyPair) {
  state.keyPair = keyPair;
  localStorage.setItem(SECRET_STORAGE_KEY, keyPair.secret);
  $("#no-key").hidden = true;
  $("#has-key").hidden = false;
  $("#public-key").textContent = keyPair.address;
  $("#secret-text").textContent = keyPair.secret;
  await connect();
}

async function createKey() {
  await useKey(await KeyPair.random());
  ui.say("A new key was created. Save its secret (Show secret) before you fund it.", "success");
}

async function importKey(event) {
  event.preventDefault();
  try {
    await useKey(await KeyPair.fromSecret($("#import-secret").value));
    $("#import-secret").value = "";
  } catch (error) {
    const reason = error instanceof InvalidKey ? error.message : "it could not be read";
    ui.say(`This secret cannot be imported: ${reason}.`, "error");
  }
}

function forgetKey() {
  const sure = window.confirm("Forget this key? Without a copy of the secret the funds are lost.");
  if (!sure) return;
  localStorage.removeItem(SECRET_STORAGE_KEY);
  window.location.reload();
}

// --- connection ---------------------------------------------------------------------------

async function connect() {
  const client = new ConstellationClient(origin, state.keyPair);
  state.client = client;
  client.addEventListener("connection", (event) => onConnection(event.detail));
  client.addEventListener("result", (event) => onResult(event.detail.result));
  client.addEventListener("notification", (event) => onNotification(event.detail.result));
  try {
    await client.start();
  } catch (error) {
    ui.say(`Cannot connect to the node: ${error.message}. Retrying automatically.`, "error");
  }
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Connection lost — reconnecting…",
  failed: "Connection failed",
};

function onConnection({ state: connection, text, accountId }) {
  const badge = $("#connection");
  const wasLost = badge.dataset.state === "reconnecting";
  badge.dataset.state = connection;
  badge.textContent = text || CONNECTION_TEXT[connection];
  if (connection === "reconnecting" && text) ui.say(text, "error");
  if (connection === "failed") ui.say(`The connection failed: ${text}`, "error");
  if (connection === "connected") {
    if (wasLost) ui.say("Reconnected to the node.", "success");
    showAccountId(accountId);
    if (accountId > 0n) {
      refreshAccount();
      loadHistory();
    }
  }
}

function showAccountId(accountId) {
  const registered = accountId && BigInt(accountId) > 0n;
  $("#account-id").textContent = registered ? String(accountId) : "not registered yet (fund it first)";
}

// --- results and notifications ------------------------------------------------------------

function historyKey(result) {
  return result.apex ? `a${result.apex}` : `m${result.messageId}`;
}

function record(result, label) {
  state.history.delete(`m${result.messageId}`);
  state.history.set(historyKey(result), {
    apex: result.apex,
    label,
    rejected: !result.ok,
    acknowledged: result.acknowledged,
    finalized: result.finalized,
    signatures: result.signaturesVerified,
    auditorCount: result.auditorCount,
  });
  renderHistory();
}

function renderHistory() {
  const entries = [...state.history.values()].sort((a, b) => Number(b.apex - a.apex));
  ui.renderHistory(entries);
}

function onResult(result) {
  if (!result.ok) return;
  record(result, result.label);
  if (result.accountData) showAccount(result.accountData);
  if (result.finalized && result.label !== "account data") {
    ui.say(`${capitalize(result.label)} finalized: ${result.signaturesVerified} of ${result.auditorCount} signatures verified.`, "success");
    scheduleRefresh();
  }
}

function onNotification(result) {
  const label = ui.describeEffects(result.effects);
  record(result, label);
  for (const fill of ui.describeFills(result.effects, state.info.quote_asset)) {
    addFill(fill);
    ui.say(`Your order was filled: ${fill}`, "success");
  }
  const created = (result.effects?.effects || []).find((e) => e._type === "AccountCreateEffect");
  if (created) showAccountId(created.account);
  if (label.includes("deposit")) ui.say("Deposit received: your account now exists.", "success");
  if (label === "balance change") ui.say("Funds received (a deposit or a payment).", "success");
  scheduleRefresh();
}

function addFill(text) {
  const item = ui.element("li", text);
  $("#fills").prepend(item);
}

let refreshTimer = null;

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshAccount, 300);
}

async function refreshAccount() {
  if (!state.client) return;
  try {
    const result = await state.client.accountData();
    if (!result.ok) {
      if (result.status === 401) ui.renderBalances(null);
      else ui.say(ui.explainRefusal("Reading your balances", result.status, result.description), "error");
      return;
    }
    showAccount(result.accountData);
  } catch (error) {
    ui.say(`Cannot read your balances: ${error.message}.`, "error");
  }
}

function showAccount(accountData) {
  state.accountData = accountData;
  showAccountId(accountData.account_id);
  ui.renderBalances(accountData);
  ui.renderOrders(accountData, cancelOrder);
}

async function loadHistory() {
  if (!state.client) return;
  try {
    const page = await state.client.history(50);
    for (const item of page.items) await addHistoryItem(item);
    renderHistory();
  } catch (error) {
    if (error.status !== 401) ui.say(`Cannot load the history: ${error.message}.`, "error");
  }
}

async function addHistoryItem(item) {
  const check = await checkHistoryItem(item, state.client.constellation);
  const key = `a${item.apex}`;
  const known = state.history.get(key);
  state.history.set(key, {
    apex: item.apex,
    label: known ? known.label : ui.describeEffects(item.effects),
    acknowledged: true,
    finalized: check.isFinal || (known && known.finalized),
    signatures: Math.max(check.validCount, known ? known.signatures : 0),
    auditorCount: state.client.constellation.auditorKeys.length,
  });
}

// --- requests -----------------------------------------------------------------------------

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Runs one request from a form and reports its outcome in words. */
async function submit(what, send) {
  if (!state.client) {
    ui.say("Create or import a key first.", "error");
    return null;
  }
  try {
    const result = await send();
    if (!result.ok) {
      record(result, `${result.label} (refused)`);
      ui.say(ui.explainRefusal(what, result.status, result.description), "error");
      return result;
    }
    record(result, result.label);
    const finality = result.finalized ? "finalized" : "acknowledged, waiting for auditor signatures";
    ui.say(`${what} was accepted (apex ${result.apex}, ${finality}).`, "info");
    return result;
  } catch (error) {
    const reason = error instanceof AmountError || error instanceof InvalidKey ? error.message : error.message;
    ui.say(`${what} could not be sent: ${reason}.`, "error");
    return null;
  }
}

function positiveAmount(text, what) {
  const units = parseAmount(text);
  if (units === 0n) throw new AmountError(`the ${what} must be greater than zero`);
  return units;
}

async function placeOrder(event) {
  event.preventDefault();
  const result = await submit("Your order", () => {
    const amount = positiveAmount($("#order-amount").value, "amount");
    const price = parsePrice($("#order-price").value);
    const side = Number($("#order-side").value);
    const timeInForce = Number($("#order-tif").value);
    return state.client.placeOrder($("#order-asset").value, side, amount, price, timeInForce);
  });
  if (result && result.ok) {
    for (const fill of ui.describeFills(result.effects, state.info.quote_asset)) addFill(fill);
    scheduleRefresh();
  }
}

async function cancelOrder(orderId) {
  const result = await submit(`Cancelling order ${orderId}`, () => state.client.cancelOrder(orderId));
  if (result && result.ok) scheduleRefresh();
}

async function pay(event) {
  event.preventDefault();
  const result = await submit("Your payment", () => {
    const amount = positiveAmount($("#pay-amount").value, "amount");
    return state.client.pay($("#pay-destination").value, $("#pay-asset").value, amount);
  });
  if (result && result.ok) scheduleRefresh();
}

async function withdraw(event) {
  event.preventDefault();
  const result = await submit("Your withdrawal", () => {
    const amount = positiveAmount($("#withdraw-amount").value, "amount");
    const fee = parseAmount($("#withdraw-fee").value || "0");
    const destination = $("#withdraw-destination").value.trim();
    if (!destination) throw new AmountError("the destination is empty");
    const provider = $("#withdraw-provider").value;
    return state.client.withdraw(provider, $("#withdraw-asset").value, amount, destination, fee);
  });
  if (result && result.ok) scheduleRefresh();
}

async function faucet(event) {
  event.preventDefault();
  if (!state.keyPair) return ui.say("Create or import a key first.", "error");
  const asset = $("#faucet-asset").value;
  const amount = $("#faucet-amount").value;
  const body = JSON.stringify({ public_key: state.keyPair.address, asset, amount });
  try {
    const response = await fetch("/api/faucet", { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = answer.description || STATUS_TEXT[response.status] || `HTTP ${response.status}`;
      return ui.say(`The faucet refused: ${reason}.`, "error");
    }
    ui.say(`Faucet: ${formatAmount(answer.amount)} ${asset} paid into the vault; the deposit appears in a few seconds.`, "info");
  } catch (error) {
    ui.say(`The faucet is not reachable: ${error.message}.`, "error");
  }
  return undefined;
}

// --- start --------------------------------------------------------------------------------

function bind() {
  $("#create-key").addEventListener("click", createKey);
  $("#import-form").addEventListener("submit", importKey);
  $("#forget-key").addEventListener("click", forgetKey);
  $("#show-secret").addEventListener("click", () => ($("#secret").hidden = !$("#secret").hidden));
  $("#faucet-form").addEventListener("submit", faucet);
  $("#refresh").addEventListener("click", refreshAccount);
  $("#history-refresh").addEventListener("click", loadHistory);
  $("#order-form").addEventListener("submit", placeOrder);
  $("#pay-form").addEventListener("submit", pay);
  $("#withdraw-form").addEventListener("submit", withdraw);
  $("#withdraw-provider").addEventListener("change", fillWithdrawAssets);
}

async function main() {
  bind();
  $("#faucet").hidden = document.body.dataset.demo !== "1";
  try {
    await loadInfo();
  } catch (error) {
    ui.say(`Cannot read the constellation info: ${error.message}.`, "error");
    return;
  }
  const market = new MarketView(origin);
  market.select($("#market").value);
  $("#market").addEventListener("change", () => market.select($("#market").value));
  refreshNodes();
  setInterval(refreshNodes, NODES_REFRESH_MS);
  ui.renderBalances(null);
  ui.renderOrders(null, cancelOrder);
  ui.renderHistory([]);
  const secret = localStorage.getItem(SECRET_STORAGE_KEY);
  if (secret) await useKey(await KeyPair.fromSecret(secret));
  document.body.dataset.ready = "1";
}

main();
