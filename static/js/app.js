// The trader's page: the pinned constellation and its verified settings chain, key
// management, faucet, balances, orders, market data, payments, withdrawals and the history of
// the account's quanta with the finality this browser verified itself. Protocol work lives in
// client.js, trust in chain.js and domain.js; rendering helpers in ui.js.
//
// Pinning (docs/frontend.md): the constellation id comes from the link (?constellation=<hex>
// or #constellation=<hex>), else from this browser's pin (localStorage), else it is pinned on
// first use. A link naming another id than the pin re-pins only after a confirmation. When
// the served chain does not verify from the pin, #trust-error says so and the page stops.

import {
  AmountError,
  formatAmount,
  formatPrice,
  parseAmount,
  parsePrice,
  priceUnits,
  roundsToTick,
  TICK_UNITS,
} from "./amounts.js";
import { pinFromUrl, SettingsChain, TrustError } from "./chain.js";
import { ConstellationClient, STATUS_TEXT } from "./client.js";
import { constellationIdText, parseConstellationId, shortConstellationId } from "./domain.js";
import { CounterpartyMemory, historyColumns, orderOutcome, provenCounterparty, TIME_IN_FORCE_HELP } from "./history.js";
import { encodePublicKey, equalBytes, InvalidKey, KeyPair } from "./keys.js";
import { AccountLedger } from "./ledger.js";
import { MarketView } from "./market.js";
import { followNode, hasFollowed, nodeUrl, ownNode } from "./node.js";
import * as ui from "./ui.js";

const { $ } = ui;
const SECRET_STORAGE_KEY = "constellation.secret";
const PIN_STORAGE_KEY = "constellation.pin";
const NODES_REFRESH_MS = 5000;
// SPEC.md: no majority within 5 s means the result is not final; past that the page warns.
const UNFINAL_WARNING_MS = 5000;
const CHAIN_RETRY_MS = 3000;
const state = {
  chain: null,
  chainVerified: null, // the promise of `chain` (main sets it before any click can come)
  keyPair: null,
  client: null,
  accountData: null,
  history: new Map(),
  refused: null,
  registered: false,
  rules: null,
  sentCount: 0,
  ledger: null,
  recentGroups: [],
  reads: { count: 0, folded: 0 },
  // Accepted orders waiting for finality before their outcome is stated, by apex.
  pendingOutcomes: new Map(),
  counterparties: null,
};
const PENDING_OUTCOMES_MAX = 100;
// Own effects groups kept for a read that lands after them (folded onto it if above its apex).
const RECENT_GROUPS_MAX = 100;
// The page's own node (its pin's chain is read there first); every other fetch and socket
// goes to nodeUrl(), which becomes the new alpha once the page followed a replacement.
const origin = window.location.origin;

// --- trust: the pin and the verified settings ------------------------------------------------

/** Returns {pin (bytes or null), source} from the link and this browser's pin. */
function choosePin() {
  const asked = pinFromUrl(window.location.href);
  const storedText = localStorage.getItem(PIN_STORAGE_KEY);
  let stored = null;
  if (storedText) {
    try {
      stored = parseConstellationId(storedText);
    } catch (error) {
      // A link naming an id replaces a damaged pin; without one, nothing can be checked.
      const text = `the constellation id pinned in this browser is unusable (${error.message})`;
      if (!asked) throw new TrustError("bad-pin", text);
    }
  }
  if (asked && stored && !equalBytes(asked, stored)) {
    const question =
      `This link asks for constellation\n${constellationIdText(asked)}\n` +
      `but this browser is pinned to\n${constellationIdText(stored)}.\n\n` +
      "Re-pin to the link's constellation? Do it only if the id comes from someone you trust.";
    if (!window.confirm(question)) {
      ui.say("Re-pinning declined: this page keeps checking the constellation pinned in this browser.", "error");
      return { pin: stored, source: "pinned in this browser (re-pin declined)" };
    }
    localStorage.setItem(PIN_STORAGE_KEY, constellationIdText(asked));
    return { pin: asked, source: "re-pinned from the link" };
  }
  if (asked) {
    localStorage.setItem(PIN_STORAGE_KEY, constellationIdText(asked));
    return { pin: asked, source: stored ? "pinned in this browser" : "pinned from the link" };
  }
  if (stored) return { pin: stored, source: "pinned in this browser" };
  return { pin: null, source: "pinned on first use" };
}

// The first words of the refusal banner, one per TrustError reason (stable: tests match them).
const REFUSAL_TITLES = {
  "genesis-mismatch": "constellation id mismatch",
  "broken-chain": "broken settings chain",
  "bad-pin": "unusable constellation id",
  "no-chain": "no settings chain",
  "forged-frame": "unverifiable message from the node",
};

/** Shows the loud refusal (#trust-error) and stops everything that would trade or verify. */
function refuseTrust(error) {
  if (state.refused) return;
  state.refused = error;
  const reason = error.reason || "forged-frame";
  const banner = $("#trust-error");
  Object.assign(banner.dataset, { reason, expected: error.expected || "", served: error.served || "" });
  let hint = "";
  if (reason === "genesis-mismatch" && error.served && /^[0-9a-f]{64}$/.test(error.served)) {
    hint =
      " To use the constellation this node serves on purpose, open this page with " +
      `?constellation=${error.served} and confirm the re-pin.`;
  } else if (reason === "bad-pin") {
    hint = " Open this page with ?constellation=<the 64 hex characters of the id> to pin it.";
  }
  const title = REFUSAL_TITLES[reason] || "untrusted node";
  banner.textContent = `Refused: ${title} — ${error.message}. Nothing on this page is verified: do not trade.${hint}`;
  banner.hidden = false;
  if (error.expected && $("#pin-box").hidden) showPin(error.expected, "refused: see above");
  document.body.dataset.trust = "refused";
  $("main").inert = true;
  if (state.client) state.client.close();
  const badge = $("#connection");
  badge.dataset.state = "failed";
  badge.textContent = "Refused";
}

function showPin(idText, source) {
  const pin = $("#constellation-pin");
  pin.textContent = shortConstellationId(idText);
  pin.title = idText;
  pin.dataset.id = idText;
  $("#pin-source").textContent = source;
  $("#pin-box").hidden = false;
}

async function copyPin() {
  const idText = $("#constellation-pin").dataset.id;
  try {
    await navigator.clipboard.writeText(idText);
    ui.say("Constellation id copied.", "info");
  } catch {
    window.prompt("The constellation id:", idText);
  }
}

/** Verifies the settings chain from the pin (retrying while the node is unreachable or not
 * initialized); resolves with the chain, or with null after a refusal. */
async function verifyConstellation() {
  let choice;
  try {
    choice = choosePin();
  } catch (error) {
    refuseTrust(error);
    return null;
  }
  const chain = new SettingsChain(choice.pin);
  for (;;) {
    try {
      await chain.refresh(origin);
      break;
    } catch (error) {
      if (error instanceof TrustError) {
        refuseTrust(error);
        return null;
      }
      ui.say(`Cannot verify the constellation yet: ${error.message}. Retrying.`, "error");
      await new Promise((resolve) => setTimeout(resolve, CHAIN_RETRY_MS));
    }
  }
  const idText = constellationIdText(chain.constellationId);
  if (!choice.pin) localStorage.setItem(PIN_STORAGE_KEY, idText);
  showPin(idText, choice.source);
  document.body.dataset.trust = "verified";
  return chain;
}

function showVerifiedSettings() {
  const trusted = state.chain.constellation;
  $("#settings-version").textContent = String(trusted.version);
  $("#alpha-key").textContent = encodePublicKey(trusted.alphaKey);
  $("#auditor-count").textContent = String(trusted.auditorKeys.length);
  $("#quote-asset").textContent = trusted.quoteAsset;
  for (const node of document.querySelectorAll(".quote")) node.textContent = trusted.quoteAsset;
  fillAssetSelects();
}

/** Returns the JSON of a GET, or throws an Error with a sentence (an HTML error page or an
 * HTTP failure is "the node answered HTTP 500", not a JSON parse error). */
async function getJson(path) {
  const response = await fetch(nodeUrl(path));
  if (!response.ok) throw new Error(`the node answered HTTP ${response.status}`);
  try {
    return await response.json();
  } catch {
    throw new Error("the node's answer is not JSON");
  }
}

/** The node's own state and apex: shown as it reports them (not verified). */
async function loadInfo() {
  const info = await getJson("/api/constellation/info");
  $("#node-state").textContent = info.state;
  $("#node-apex").textContent = String(info.apex ?? "—");
  showMarketRules(info);
}

/** Shows the market rules a trader needs before placing an order. */
function showMarketRules(info) {
  const quote = info.quote_asset || "";
  const lot = formatAmount(info.min_allowed_lot_size ?? 0);
  const minimum = formatAmount(info.min_account_balance ?? 0);
  $("#market-rules").textContent =
    `Tick ${formatPrice(TICK_UNITS)} ${quote} (prices are rounded to it) · minimum lot ${lot} ${quote} ` +
    `(amount × price) · minimum balance to register ${minimum} ${quote} · trading fees: none`;
  state.rules = { quote, lot: BigInt(info.min_allowed_lot_size ?? 0), minimum };
  $("#faucet-hint").textContent =
    `Funds come from the local ledger. A new key's first deposit must be at least ${minimum} ${quote} ` +
    "(it registers the account); other assets are refused until then.";
}

function providerId(provider) {
  return `${provider.provider_type}-${provider.name}`;
}

function fillAssetSelects() {
  const { settings } = state.chain.constellation;
  const assets = settings.assets.filter((asset) => !asset.is_suspended);
  const codes = assets.map((asset) => asset.code);
  const markets = assets.filter((asset) => !asset.is_quote_asset).map((asset) => asset.code);
  setOptions("#faucet-asset", codes);
  setOptions("#pay-asset", codes);
  setOptions("#order-asset", markets);
  setOptions("#market", markets, (code) => `${code}/${state.chain.constellation.quoteAsset}`);
  setOptions("#withdraw-provider", settings.providers.map(providerId));
  fillWithdrawAssets();
}

function setOptions(selector, values, label = (value) => value) {
  const select = $(selector);
  const current = select.value;
  select.replaceChildren(...values.map((value) => new Option(label(value), value)));
  if (values.includes(current)) select.value = current;
}

function fillWithdrawAssets() {
  const { providers } = state.chain.constellation.settings;
  const provider = providers.find((p) => providerId(p) === $("#withdraw-provider").value);
  setOptions("#withdraw-asset", provider ? provider.assets.map((asset) => asset.asset) : []);
}

/** Follows the settings chain from its verified head (a new version brings new keys). */
async function followChain() {
  const before = state.chain.head.version;
  try {
    await state.chain.refresh(nodeUrl("/"));
  } catch (error) {
    if (error instanceof TrustError) refuseTrust(error);
    return;
  }
  if (state.chain.head.version !== before) {
    showVerifiedSettings();
    ui.say(`New constellation settings verified: version ${state.chain.head.version}.`, "info");
  }
}

async function refreshNodes() {
  if (state.refused) return;
  await followChain();
  try {
    const response = await fetch(nodeUrl("/api/constellation/nodes"));
    const { nodes } = await response.json();
    const trusted = state.chain.constellation;
    const alpha = encodePublicKey(trusted.alphaKey);
    const auditors = trusted.auditorKeys.map(encodePublicKey);
    const role = (key) => {
      if (key === alpha) return "alpha";
      return auditors.includes(key) ? "auditor" : "not in the verified settings";
    };
    const top = Math.max(0, ...nodes.map((node) => Number(node.apex ?? 0)));
    const rows = nodes.map((node) => {
      const behind = node.apex === null || node.apex === undefined ? 0 : top - Number(node.apex);
      const lag = behind > 0 ? ui.element("span", `${node.state}, ${behind} behind`, "lagging") : node.state;
      const status = isDeadOwnNode(node) ? ui.element("span", `${node.state} — this page's node, left (dead or replaced)`, "dead-node") : lag;
      return [
        String(node.index),
        ui.element("code", `${node.public_key.slice(0, 8)}… ${node.address}`),
        role(node.public_key),
        status,
        String(node.apex ?? "—"),
      ];
    });
    const listed = nodes.map(isDeadOwnNode);
    if (hasFollowed() && !listed.includes(true)) {
      // The replacement took the page's node out of the settings: still say where it went.
      const text = "this page's node, left (no longer in the settings)";
      rows.push(["—", ui.element("code", ownNode().origin), "replaced", ui.element("span", text, "dead-node"), "—"]);
      listed.push(true);
    }
    ui.fillTable("#nodes", rows, "Not initialized.");
    markDeadRows(listed);
    const own = await getJson("/api/constellation/info");
    $("#node-state").textContent = own.state;
    $("#node-apex").textContent = String(own.apex ?? "—");
    $("#nodes").dataset.stale = "0";
    $("#nodes-freshness").textContent = `as of ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("#node-state").textContent = `unreachable (${error.message})`;
    $("#nodes").dataset.stale = "1";
    $("#nodes-freshness").textContent = "STALE: the last refresh failed; the table shows older states";
  }
}

/** Whether `node` is the node that served this page and the page has left it for a new
 * alpha (its gateway did not answer or said it was replaced). */
function isDeadOwnNode(node) {
  if (!hasFollowed()) return false;
  try {
    return new URL(node.address).origin === ownNode().origin;
  } catch {
    return false;
  }
}

/** Tags (data-dead) the row of the page's own node once the page has followed away from it. */
function markDeadRows(dead) {
  const rows = document.querySelectorAll("#nodes tbody tr");
  dead.forEach((isDead, at) => {
    if (rows[at]) rows[at].dataset.dead = isDead ? "1" : "0";
  });
}

/** The client connected: if to another node than before (a new alpha), every other fetch
 * and socket of the page follows it, and the node table is read there at once. */
function followConnectedNode() {
  if (!state.client || !followNode(state.client.alphaUrl())) return;
  ui.say(`This page now talks to the new alpha at ${state.client.alphaUrl().origin}.`, "info");
  if (state.market) state.market.moveNode();
  refreshNodes();
}

// --- keys ---------------------------------------------------------------------------------

async function useKey(keyPair) {
  state.keyPair = keyPair;
  localStorage.setItem(SECRET_STORAGE_KEY, keyPair.secret);
  $("#no-key").hidden = true;
  $("#has-key").hidden = false;
  $("#public-key").textContent = keyPair.address;
  $("#secret-text").textContent = keyPair.secret;
  // A key made or imported while the settings chain is still being verified waits for it: a
  // client made before had no trusted keys and never connected.
  await state.chainVerified;
  // Per constellation and key: apexes of another constellation (a fresh up.sh) are other quanta.
  if (state.chain) {
    const scope = `${constellationIdText(state.chain.constellationId).slice(0, 16)}.${keyPair.address}`;
    state.counterparties = new CounterpartyMemory(localStorage, scope);
  }
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
  if (state.refused || !state.chain) return;
  const client = new ConstellationClient(origin, state.keyPair, state.chain);
  state.client = client;
  client.addEventListener("connection", (event) => onConnection(event.detail));
  client.addEventListener("result", (event) => onResult(event.detail.result));
  client.addEventListener("notification", (event) => onNotification(event.detail.result));
  client.addEventListener("trust", (event) => refuseTrust(event.detail.error));
  client.addEventListener("trust-log", (event) => onTrustLog(event.detail));
  client.addEventListener("sequence", (event) => onSequenceJump(event.detail));
  try {
    await client.start();
  } catch (error) {
    if (!state.refused) ui.say(`Cannot connect to the node: ${error.message}. Retrying automatically.`, "error");
  }
}

/** Everything the client ignored or could not verify goes to the verification log. */
function onTrustLog({ kind, text, stats }) {
  const time = new Date().toLocaleTimeString();
  const item = ui.element("li", `${time} ${text}`, `trust-${kind}`);
  $("#trust-log").prepend(item);
  while ($("#trust-log").children.length > 50) $("#trust-log").lastChild.remove();
  $("#replay-count").textContent = String(stats.replays + stats.repeats);
  $("#unverified-count").textContent = String(stats.unverified + stats.unproven);
  $("#jump-count").textContent = String(stats.jumps);
  if (kind === "replays") ui.say(`A replayed result was ignored: ${text}.`, "error");
}

function onSequenceJump({ from, to, missed }) {
  const text = `${missed} event(s) of your account were not received (sequence ${from} → ${to})`;
  ui.say(`${text}; reloading the history.`, "error");
  loadHistory();
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
  if (state.refused) return;
  document.body.dataset.connection = connection;
  if (connection !== "connected") showDisconnected();
  if (connection === "reconnecting" && text) ui.say(text, "error");
  if (connection === "failed") ui.say(`The connection failed: ${text}`, "error");
  if (connection === "connected") {
    followConnectedNode();
    if (wasLost) ui.say("Reconnected to the node.", "success");
    showAccountId(accountId);
    if (accountId > 0n) {
      refreshAccount();
      loadHistory();
    } else if (!state.accountData) {
      ui.renderBalances(null, true);
    }
  }
}

function showAccountId(accountId) {
  const registered = accountId && BigInt(accountId) > 0n;
  state.registered = Boolean(registered);
  $("#account-id").textContent = registered ? String(accountId) : "not registered yet (fund it first)";
}

/** Not connected is not "nothing": what is shown is marked unknown or last known. */
function showDisconnected() {
  if (!state.registered) $("#account-id").textContent = "unknown (not connected to the node)";
  if (state.accountData) {
    $("#balances-attestation").textContent = "Not connected: the last known balances, possibly outdated.";
  } else {
    ui.renderBalances(null, false);
  }
}

// --- results and notifications ------------------------------------------------------------

function historyKey(result) {
  return result.apex ? `a${result.apex}` : `m${result.messageId}`;
}

function record(result, label, destination = null) {
  state.history.delete(`m${result.messageId}`);
  if (result.acknowledged && !result.finalized && result.kind !== "rejected") watchFinality(result);
  const known = state.history.get(historyKey(result));
  const effects = result.effects || known?.effects || null;
  state.history.set(historyKey(result), {
    apex: result.apex,
    label,
    effects,
    others: result.otherAccounts ?? known?.others,
    proven: known?.proven || null,
    destination: destination || known?.destination || null,
    rejected: result.kind === "rejected",
    unverified: result.unverified,
    acknowledged: result.acknowledged,
    finalized: result.finalized,
    signatures: result.signaturesVerified,
    auditorCount: result.auditorCount,
    stale: state.history.get(historyKey(result))?.stale || false,
    time: state.history.get(historyKey(result))?.time || Date.now(),
    sent: state.sentCount++,
  });
  renderHistory();
}

/** Returns the history label of a result: from its effects when it has them, so the label
 * is the one a reload shows (loadHistory describes the same effects). */
function labelOf(result, fallback) {
  if (!result.effects) return fallback;
  const text = ui.describeEffects(result.effects, state.chain.constellation.quoteAsset);
  return text === ui.NOTHING_CHANGED && fallback ? `${fallback}: nothing changed` : text;
}

/** Warns when an acknowledged quantum stays unfinal past UNFINAL_WARNING_MS. */
function watchFinality(result) {
  const key = historyKey(result);
  setTimeout(() => {
    const entry = state.history.get(key);
    if (!entry || entry.finalized || entry.stale) return;
    entry.stale = true;
    renderHistory();
    const seconds = UNFINAL_WARNING_MS / 1000;
    const counts = ui.signaturesText(entry.signatures, entry.auditorCount);
    ui.say(
      `Warning: apex ${entry.apex} was acknowledged by alpha but is not final after ${seconds} s ` +
        `(${counts} signatures verified): do not rely on it yet.`,
      "error",
    );
  }, UNFINAL_WARNING_MS);
}

function renderHistory() {
  // Newest first; refused requests (no apex) stay beside their time of sending, on top.
  const order = (entry) => (entry.apex ? Number(entry.apex) : Number.MAX_SAFE_INTEGER - entry.sent);
  const entries = [...state.history.values()].sort((a, b) => order(b) - order(a));
  for (const entry of entries) entry.columns = entryColumns(entry);
  ui.renderHistory(entries);
  renderFills(entries);
}

/** Returns a history row's amount, price and counterparty; a counterparty seen in a live
 * proven result is remembered so that a reload still names it. */
function entryColumns(entry) {
  if (!entry.effects) return null;
  const columns = historyColumns(entry.effects, {
    quote: state.chain.constellation.quoteAsset,
    proven: entry.proven,
    others: entry.others,
    destination: entry.destination,
    remembered: state.counterparties?.get(entry.apex),
    depositProvider,
  });
  if (entry.others !== undefined && entry.others !== null) state.counterparties?.set(entry.apex, columns.counterparty);
  return columns;
}

/** Returns the only provider that maps `asset` (a deposit of it can come from no other), or
 * null when several or none do. */
function depositProvider(asset) {
  const providers = state.chain.constellation.settings.providers.filter((provider) =>
    provider.assets.some((mapping) => mapping.asset === asset),
  );
  return providers.length === 1 ? providerId(providers[0]) : null;
}

function onResult(result) {
  if (!result.ok) return;
  if (result.messageId === 0n) {
    // A notification gathering signatures: its row changes, it is not a new event.
    const known = state.history.get(historyKey(result));
    record(result, known ? known.label : labelOf(result, "notification"));
    return;
  }
  // Balance reads are not events of the account: they stay out of the live history.
  if (result.label !== "account data") record(result, labelOf(result, result.label));
  if (result.accountData) adoptRead(result);
  else accountEffects(result);
  if (result.finalized && result.label !== "account data") {
    const counts = ui.signaturesText(result.signaturesVerified, result.auditorCount);
    ui.say(`${capitalize(result.label)} finalized: ${counts} signatures verified.`, "success");
    sayOutcome(result);
  }
}

/** Folds a result's own effects into the balances shown (no read, no quantum); a fold that
 * cannot follow (an effect or order it does not know) asks for one read instead. */
function accountEffects(result) {
  if (!result.effects || !result.apex) return;
  state.recentGroups.push([result.apex, result.effects]);
  if (state.recentGroups.length > RECENT_GROUPS_MAX) state.recentGroups.shift();
  if (!state.ledger) return scheduleRefresh();
  if (!state.ledger.fold(result.apex, result.effects)) {
    state.ledger = null;
    return scheduleRefresh();
  }
  state.reads.folded += 1;
  return showAccount(state.ledger.view());
}

/** Takes a balance read as the new starting point and folds what came after it. */
function adoptRead(result) {
  if (state.ledger && state.ledger.apex === BigInt(result.apex)) return;
  const ledger = new AccountLedger(result.accountData, result.apex, state.chain.constellation.quoteAsset);
  for (const [apex, group] of state.recentGroups) {
    if (!ledger.fold(apex, group)) return scheduleRefresh();
  }
  state.ledger = ledger;
  state.reads.count += 1;
  document.body.dataset.balanceReads = String(state.reads.count);
  showAccount(ledger.view());
}

function onNotification(result) {
  const quote = state.chain.constellation.quoteAsset;
  const label = ui.describeEffects(result.effects, quote);
  record(result, label);
  for (const fill of ui.describeFills(result.effects, state.chain.constellation.quoteAsset)) {
    ui.say(`Your order was filled: ${fill}`, "success");
  }
  const created = (result.effects?.effects || []).find((e) => e._type === "AccountCreateEffect");
  if (created) showAccountId(created.account);
  if (created) ui.say(`Your account now exists (${label}).`, "success");
  else if (label.startsWith("received")) ui.say(`Funds ${label} ${senderText(result)}.`, "success");
  accountEffects(result);
}

/** Returns who sent received funds: the other account of a payment, else a deposit. */
function senderText(result) {
  const others = result.otherAccounts || [];
  if (others.length === 1) return `from account ${others[0]} (a payment)`;
  if (others.length === 0) return "(a deposit through a payment provider)";
  return `(a quantum touching accounts ${others.join(", ")})`;
}

// Fills listed under the order form (the newest first); the history pages loaded hold more.
const FILLS_SHOWN = 50;

/** Lists the fills of the history's quanta, newest first: made from the same proven effects
 * as the history, so a reload shows them again (they used to live in memory only). */
function renderFills(entries) {
  const quote = state.chain.constellation.quoteAsset;
  const items = [];
  for (const entry of entries) {
    if (entry.rejected || !entry.effects) continue;
    for (const fill of ui.describeFills(entry.effects, quote)) {
      items.push(ui.element("li", `${fill} · ${entry.time ? ui.timeText(entry.time) : ""} · apex ${entry.apex}`));
    }
  }
  $("#fills").replaceChildren(...items.slice(0, FILLS_SHOWN));
  $("#fills-empty").hidden = items.length > 0;
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
    if (result.unverified) {
      ui.say(`Reading your balances: ${result.description}.`, "error");
      return;
    }
    if (!result.ok) {
      if (result.status === 401) ui.renderBalances(null, true);
      else ui.say(ui.explainRefusal("Reading your balances", result.status, result.description), "error");
      return;
    }
    adoptRead(result);
  } catch (error) {
    ui.say(`Cannot read your balances: ${error.message}.`, "error");
  }
}

function showAccount(accountData) {
  state.accountData = accountData;
  showAccountId(accountData.account_id);
  $("#balances-attestation").textContent =
    "Alpha-attested: balances and open orders are signed by alpha alone, not proven by a majority of the auditors.";
  ui.renderBalances(accountData);
  ui.renderOrders(accountData, cancelOrder, cancelAll);
  updatePreview();
}

// --- the order form: available balance, max, cost preview, click-to-fill -------------------

/** Returns the free balance of `asset` in units (0 without one or before a read). */
function available(asset) {
  const balance = (state.accountData?.balances || []).find((item) => item.asset === asset);
  return balance ? BigInt(balance.amount) - BigInt(balance.liabilities) : 0n;
}

const UNITS = 10_000_000n;

/** Shows what the order spends, what is available, and what the node would refuse. */
function updatePreview() {
  const quote = state.chain?.constellation.quoteAsset || "";
  const asset = $("#order-asset").value;
  const buying = $("#order-side").value === "2";
  const spend = buying ? quote : asset;
  $("#order-available").textContent = `Available: ${formatAmount(available(spend))} ${spend}` +
    (state.accountData ? "" : " (not read yet)");
  const notes = [];
  let amount = null;
  try {
    amount = parseAmount($("#order-amount").value);
  } catch {
    amount = null;
  }
  const priceText = $("#order-price").value;
  const price = priceUnits(priceText);
  if (roundsToTick(priceText) && price !== null) notes.push(`the price will be rounded to the tick: ${formatPrice(price)}`);
  if (amount && price) {
    const total = (amount * price) / UNITS;
    notes.unshift(`Total ≈ ${formatAmount(total)} ${quote}`);
    if (state.rules && total < state.rules.lot) notes.push(`below the minimum lot of ${formatAmount(state.rules.lot)} ${quote}`);
    const needed = buying ? total : amount;
    if (state.accountData && needed > available(spend)) notes.push(`more than your available ${formatAmount(available(spend))} ${spend}`);
  }
  const crossing = postOnlyCrossing(buying, price);
  if (crossing) notes.push(crossing);
  $("#order-preview").textContent = notes.join(" · ");
}

const POST_ONLY = 3;

/** Returns a warning when a post-only order's price reaches the opposite side's best level
 * in the market data (as the node reports it: the engine decides, this only warns). */
function postOnlyCrossing(buying, price) {
  if (Number($("#order-tif").value) !== POST_ONLY || price === null || !state.market) return "";
  if (state.market.market !== $("#order-asset").value) return "";
  const levels = state.market.depth[buying ? "asks" : "bids"] || [];
  if (!levels.length) return "";
  const best = Number(levels[0].price);
  const typed = Number(price) / 1e7;
  const crosses = buying ? typed >= best : typed <= best;
  const side = buying ? "ask" : "bid";
  return crosses ? `post only: the best ${side} is ${formatPrice(BigInt(Math.round(best * 1e7)))}, so this order would trade at once and be refused` : "";
}

/** Fills the amount with the most the available balance allows at the typed price. */
function fillMax() {
  const asset = $("#order-asset").value;
  const buying = $("#order-side").value === "2";
  if (!buying) {
    $("#order-amount").value = formatAmount(available(asset));
  } else {
    const price = priceUnits($("#order-price").value);
    if (price === null) {
      ui.say("Type a price first: the most you can buy depends on it.", "error", "#trade-panel");
      return;
    }
    $("#order-amount").value = formatAmount((available(state.chain.constellation.quoteAsset) * UNITS) / price);
  }
  updatePreview();
}

/** A clicked depth level fills the form: the opposite side, its price, the total up to it. */
function pickLevel({ side, price, amount }) {
  $("#order-side").value = side === "buy" ? "2" : "1";
  $("#order-asset").value = $("#market").value;
  $("#order-price").value = price;
  $("#order-amount").value = amount;
  updatePreview();
  $("#order-amount").focus();
}

// One page of history per request (the chronicler allows up to 1000); "Older" pages on.
const HISTORY_PAGE = 15;

/** Loads the newest page of history (`older`: the next older page) and shows "Older" while
 * there is more. */
async function loadHistory(older = false) {
  if (!state.client) return;
  const cursor = older === true && state.historyCursor ? state.historyCursor : 0n;
  try {
    const page = await state.client.history(HISTORY_PAGE, cursor);
    page.items.forEach((item, index) => addHistoryItem(item, page.checks[index]));
    // The newest page sets where "Older" goes only the first time: after paging back, a
    // reload of the newest page must not send "Older" to page 2 again.
    if (older === true || state.historyCursor === undefined) state.historyCursor = page.next_cursor ?? null;
    $("#history-older").hidden = !state.historyCursor;
    renderHistory();
  } catch (error) {
    if (error.status !== 401) ui.say(`Cannot load the history: ${error.message}.`, "error", "#history-panel");
  }
}

function addHistoryItem(item, check) {
  const key = `a${item.apex}`;
  const known = state.history.get(key);
  state.history.set(key, {
    apex: item.apex,
    time: Number(item.timestamp),
    label: ui.describeEffects(item.effects, state.chain.constellation.quoteAsset),
    effects: item.effects,
    // Named from the item's quantum, which checkHistoryItem matched to the signed hash.
    proven: check.isFinal ? provenCounterparty(check.quantum, state.keyPair.publicKey) : null,
    others: known?.others,
    destination: known?.destination || null,
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

/** Runs one request from a form and reports its outcome in words, next to the form. The
 * form's submit button is disabled while the request is in flight, so a double click sends
 * one request, not two. */
async function submit(what, send, form) {
  const panel = form.closest(".panel");
  if (!state.client) {
    ui.say("Create or import a key first.", "error", panel);
    return null;
  }
  const button = form.querySelector("button[type=submit]");
  if (button && button.disabled) return null;
  if (button) button.disabled = true;
  try {
    const result = await send();
    if (result.unverified) {
      record(result, `${result.label} (unverified)`);
      ui.say(`${what}: ${result.description}. It may or may not have been executed; check the history before sending it again.`, "error", panel);
      return result;
    }
    if (!result.ok) {
      record(result, `${result.label} (refused: ${ui.humanize(result.description)})`);
      ui.say(ui.explainRefusal(what, result.status, result.description), "error", panel);
      return result;
    }
    record(result, labelOf(result, result.label));
    const finality = result.finalized ? "finalized" : "acknowledged, waiting for auditor signatures";
    ui.say(`${what} was accepted (apex ${result.apex}, ${finality}).`, "info", panel);
    return result;
  } catch (error) {
    ui.say(`${what} could not be sent: ${error.message}.`, "error", panel);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

function positiveAmount(text, what) {
  const units = parseAmount(text);
  if (units === 0n) throw new AmountError(`the ${what} must be greater than zero`);
  return units;
}

async function placeOrder(event) {
  event.preventDefault();
  const order = { asset: $("#order-asset").value, timeInForce: Number($("#order-tif").value) };
  const result = await submit("Your order", () => {
    order.amount = positiveAmount($("#order-amount").value, "amount");
    const price = parsePrice($("#order-price").value);
    const side = Number($("#order-side").value);
    return state.client.placeOrder(order.asset, side, order.amount, price, order.timeInForce);
  }, event.target);
  if (result && result.ok) {
    // What the order did is stated once a majority of the auditors signed it (final).
    state.pendingOutcomes.set(String(result.apex), order);
    while (state.pendingOutcomes.size > PENDING_OUTCOMES_MAX) state.pendingOutcomes.delete(state.pendingOutcomes.keys().next().value);
    sayOutcome(result);
  }
}

/** States a final order's outcome in a trader's words next to the form (once per order). */
function sayOutcome(result) {
  const order = state.pendingOutcomes.get(String(result.apex));
  if (!order || !result.finalized) return;
  state.pendingOutcomes.delete(String(result.apex));
  const outcome = orderOutcome(result.effects, order, state.chain.constellation.quoteAsset);
  const counts = ui.signaturesText(result.signaturesVerified, result.auditorCount);
  const text = `${outcome.text} Final (apex ${result.apex}): ${counts} signatures verified.`;
  const message = ui.say(text, outcome.kind === "killed" || outcome.kind === "nothing-filled" ? "info" : "success", "#trade-panel");
  message.dataset.outcome = outcome.kind;
  if (outcome.selfTrade) message.dataset.selfTrade = "1";
}

function showTimeInForceHelp() {
  $("#order-tif-help").textContent = TIME_IN_FORCE_HELP[Number($("#order-tif").value)] || "";
}

async function cancelOrder(orderId) {
  await submit(`Cancelling order ${orderId}`, () => state.client.cancelOrder(orderId), $("#balances-panel"));
}

/** Cancels every open order of the market of `asset` in one quantum; says how many. */
async function cancelAll(asset) {
  const market = `${asset}/${state.chain.constellation.quoteAsset}`;
  const result = await submit(`Cancelling all ${market} orders`, () => state.client.cancelAll(asset), $("#balances-panel"));
  if (result && result.ok) {
    const removed = (result.effects?.effects || []).filter((e) => e._type === "OrderRemovedEffect").length;
    ui.say(`Cancelled ${removed} ${market} order${removed === 1 ? "" : "s"} (apex ${result.apex}).`, "success", "#balances-panel");
  }
}

async function pay(event) {
  event.preventDefault();
  const destination = $("#pay-destination").value.trim();
  const result = await submit("Your payment", () => {
    const amount = positiveAmount($("#pay-amount").value, "amount");
    return state.client.pay(destination, $("#pay-asset").value, amount);
  }, event.target);
  // The history names the payee by the key typed here too (the proof names its account id).
  if (result && result.ok) record(result, labelOf(result, result.label), destination);
}

async function withdraw(event) {
  event.preventDefault();
  await submit("Your withdrawal", () => {
    const amount = positiveAmount($("#withdraw-amount").value, "amount");
    const fee = parseAmount($("#withdraw-fee").value || "0");
    if (fee > amount) {
      throw new AmountError(`the fee (${formatAmount(fee)}) is larger than the amount (${formatAmount(amount)}): check it`);
    }
    const destination = $("#withdraw-destination").value.trim();
    if (!destination) throw new AmountError("the destination is empty");
    const provider = $("#withdraw-provider").value;
    return state.client.withdraw(provider, $("#withdraw-asset").value, amount, destination, fee);
  }, event.target);
}

async function faucet(event) {
  event.preventDefault();
  const near = "#faucet";
  if (!state.keyPair) return ui.say("Create or import a key first.", "error", near);
  const asset = $("#faucet-asset").value;
  const amount = $("#faucet-amount").value;
  const body = JSON.stringify({ public_key: state.keyPair.address, asset, amount });
  try {
    const response = await fetch(nodeUrl("/api/faucet"), { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = answer.description || STATUS_TEXT[response.status] || `HTTP ${response.status}`;
      return ui.say(`The faucet refused: ${reason}.`, "error", near);
    }
    ui.say(`Faucet: ${formatAmount(answer.amount)} ${asset} paid into the vault; the deposit appears in a few seconds.`, "info", near);
  } catch (error) {
    ui.say(`The faucet is not reachable: ${error.message}.`, "error", near);
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
  $("#history-refresh").addEventListener("click", () => loadHistory());
  $("#history-older").addEventListener("click", () => loadHistory(true));
  $("#order-form").addEventListener("submit", placeOrder);
  for (const id of ["#order-amount", "#order-price", "#order-side", "#order-asset", "#order-tif"]) {
    $(id).addEventListener("input", updatePreview);
  }
  $("#order-max").addEventListener("click", fillMax);
  $("#order-tif").addEventListener("change", showTimeInForceHelp);
  showTimeInForceHelp();
  $("#pay-form").addEventListener("submit", pay);
  $("#withdraw-form").addEventListener("submit", withdraw);
  $("#withdraw-provider").addEventListener("change", fillWithdrawAssets);
  $("#pin-copy").addEventListener("click", copyPin);
  // A #constellation= link opened on this page changes only the fragment: start again with it.
  window.addEventListener("hashchange", () => {
    if (/(^|[#&])constellation=/.test(window.location.hash)) window.location.reload();
  });
}

async function main() {
  bind();
  $("#faucet").hidden = document.body.dataset.demo !== "1";
  state.chainVerified = verifyConstellation().then((chain) => (state.chain = chain));
  await state.chainVerified;
  if (!state.chain) {
    document.body.dataset.ready = "1";
    return;
  }
  showVerifiedSettings();
  loadInfo().catch((error) => ui.say(`Cannot read the node's state: ${error.message}.`, "error"));
  const market = new MarketView(state.chain.constellation.quoteAsset, pickLevel);
  state.market = market;
  market.select($("#market").value);
  $("#market").addEventListener("change", () => {
    market.select($("#market").value);
    $("#order-asset").value = $("#market").value;
    updatePreview();
  });
  refreshNodes();
  setInterval(refreshNodes, NODES_REFRESH_MS);
  ui.renderBalances(null);
  ui.renderOrders(null, cancelOrder, cancelAll);
  ui.renderHistory([]);
  const secret = localStorage.getItem(SECRET_STORAGE_KEY);
  if (secret) await useKey(await KeyPair.fromSecret(secret));
  document.body.dataset.ready = "1";
}

main();
