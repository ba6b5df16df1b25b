// Runs the browser's ES modules under Node for tests/browser/test_xdr_js.py and
// test_trust_js.py: reads one JSON job on stdin, writes one JSON answer on stdout. 64-bit
// integers travel as {"$big": "123"}, bytes as {"$hex": "..."}, so nothing is lost on the way.

import { pinFromUrl, SettingsChain, TrustError, verifyChain } from "../../static/js/chain.js";
import { ConstellationClient, openFrame } from "../../static/js/client.js";
import * as domain from "../../static/js/domain.js";
import { decodePublicKey, encodePublicKey, fromHex, KeyPair, toHex } from "../../static/js/keys.js";
import { provenCounterparty } from "../../static/js/history.js";
import { checkHistoryItem, checkResult } from "../../static/js/verify.js";
import { decode, encode } from "../../static/js/xdr.js";

globalThis.WebSocket ??= { OPEN: 1 };

function toJson(value) {
  if (typeof value === "bigint") return { $big: value.toString() };
  if (value instanceof Uint8Array) return { $hex: toHex(value) };
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toJson(item)]));
  }
  return value;
}

function fromJson(value) {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === "object") {
    if ("$big" in value) return BigInt(value.$big);
    if ("$hex" in value) return fromHex(value.$hex);
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fromJson(item)]));
  }
  return value;
}

function roundTrip({ vectors }) {
  return vectors.map(({ type, hex }) => {
    try {
      const value = decode(type, fromHex(hex));
      return { value: toJson(value), hex: toHex(encode(type, value)) };
    } catch (error) {
      return { error: `${error.name}: ${error.message}` };
    }
  });
}

function rejects({ vectors }) {
  return vectors.map(({ type, hex }) => {
    try {
      decode(type, fromHex(hex));
      return "accepted";
    } catch (error) {
      return error.name;
    }
  });
}

async function frames({ seed, header, calls, nextMessageId, constellationId }) {
  const keyPair = await KeyPair.fromSeed(fromHex(seed));
  const chain = new SettingsChain(fromHex(constellationId));
  const client = new ConstellationClient("http://127.0.0.1:1/", keyPair, chain);
  client.nextMessageId = BigInt(nextMessageId);
  const sent = [];
  const allSent = new Promise((resolve) => {
    const send = (frame) => sent.push(toHex(frame)) === calls.length && resolve();
    client.socket = { readyState: 1, send };
  });
  let index = 0;
  client.header = () => fromJson(header[index++]);
  // Requests never get an answer here; only the frames they send matter.
  for (const [method, args] of calls) client[method](...fromJson(args)).catch(() => {});
  const timeout = new Promise((resolve) => setTimeout(resolve, 20000));
  await Promise.race([allSent, timeout]);
  return { address: keyPair.address, secret: keyPair.secret, sent };
}

async function verify({ constellation, results, items }) {
  const trusted = fromJson(constellation);
  const checked = [];
  for (const hex of results) checked.push(await checkResult(decode("Message", fromHex(hex)), trusted));
  const history = [];
  for (const hex of items) history.push(await checkHistoryItem(decode("QuantumInfoItem", fromHex(hex)), trusted));
  return { results: checked, history };
}

/** Checks history items as the page does and names each one's counterparty for `ownKey`
 * from its checked quantum only (none when the item is not final). */
async function counterparties({ constellation, items, ownKey }) {
  const trusted = fromJson(constellation);
  const answers = [];
  for (const hex of items) {
    const check = await checkHistoryItem(decode("QuantumInfoItem", fromHex(hex)), trusted);
    const named = check.isFinal ? provenCounterparty(check.quantum, fromHex(ownKey)) : null;
    answers.push({ isFinal: check.isFinal, validCount: check.validCount, counterparty: named });
  }
  return answers;
}

async function openFrames({ alphaKey, constellationId, frames: list }) {
  const answers = [];
  for (const hex of list) {
    try {
      answers.push({ value: toJson(await openFrame(fromHex(hex), fromHex(alphaKey), fromHex(constellationId))) });
    } catch (error) {
      answers.push({ error: error.message });
    }
  }
  return answers;
}

function strkeys({ raw, strkeys: texts }) {
  const encoded = raw.map((hex) => encodePublicKey(fromHex(hex)));
  const decoded = texts.map((text) => {
    try {
      return toHex(decodePublicKey(text));
    } catch (error) {
      return `${error.name}: ${error.message}`;
    }
  });
  return { encoded, decoded };
}

async function digests({ cases }) {
  const answers = [];
  for (const { kind, args } of cases) {
    const values = fromJson(args);
    let digest;
    if (kind === "bound") digest = await domain.boundDigest(...values);
    if (kind === "message") digest = await domain.messageDigest(...values);
    if (kind === "payload") digest = await domain.payloadHash(...values);
    if (kind === "update") digest = await domain.updateDigest(values[0], decode("Message", values[1]));
    if (kind === "id") digest = await domain.constellationIdOf(decode("ConstellationSettings", values[0]));
    answers.push(toHex(digest));
  }
  return { answers, domains: domain.Domain };
}

function trustFailure(error) {
  if (!(error instanceof TrustError)) return { error: `${error.name}: ${error.message}` };
  return { reason: error.reason, message: error.message, expected: error.expected, served: error.served };
}

function trusted(constellation) {
  const { constellationIdText: id, version, alphaIndex, alphaKey, auditorKeys, quoteAsset } = constellation;
  return toJson({ id, version, alphaIndex, alphaKey, auditorKeys, quoteAsset });
}

async function chains({ cases }) {
  const answers = [];
  for (const { pin, entries } of cases) {
    try {
      answers.push(trusted(await verifyChain(pin ? fromHex(pin) : null, entries)));
    } catch (error) {
      answers.push(trustFailure(error));
    }
  }
  return answers;
}

/** Serves `pages` (one JSON body per request, in order) and refreshes a chain from them. */
async function chainFetch({ pin, pages, refreshes }) {
  const asked = [];
  const fetcher = async (url) => {
    asked.push(`${url.pathname}${url.search}`);
    const body = pages[Math.min(asked.length - 1, pages.length - 1)];
    return { ok: true, status: 200, json: async () => body };
  };
  const chain = new SettingsChain(pin ? fromHex(pin) : null);
  const answers = [];
  for (let i = 0; i < refreshes; i++) {
    try {
      answers.push(trusted(await chain.refresh("http://node.test/", fetcher)));
    } catch (error) {
      answers.push(trustFailure(error));
    }
  }
  return { asked, answers };
}

function pins({ urls }) {
  return urls.map((url) => {
    try {
      const pin = pinFromUrl(url);
      return pin ? toHex(pin) : null;
    } catch (error) {
      return trustFailure(error);
    }
  });
}

function describeResult(result) {
  if (!result || typeof result !== "object" || !("kind" in result)) return toJson(result);
  const { kind, ok, apex, acknowledged, finalized, signaturesVerified, auditorCount, status, description, label } = result;
  const accountData = result.accountData !== null;
  return toJson({ kind, ok, apex, acknowledged, finalized, signaturesVerified, auditorCount, status, description, label, accountData });
}

/** A client on a verified chain sends `calls`, then reads `frames` as if from the node;
 * answers what each call became and every event the client emitted. */
async function session({ seed, entries, accountId, header, calls, frames: list, pages = [], gapGraceMs = 0 }) {
  const keyPair = await KeyPair.fromSeed(fromHex(seed));
  const chain = new SettingsChain(null);
  await chain.applyPage({ updates: entries, more: false });
  // The node's settings chain, one page per refresh (none: it cannot be reached).
  let page = 0;
  const fetcher = async () => {
    if (page >= pages.length) throw new Error("unreachable");
    const body = pages[page++];
    return { ok: true, status: 200, json: async () => body };
  };
  const client = new ConstellationClient("http://127.0.0.1:1/", keyPair, chain, fetcher);
  client.accountId = BigInt(accountId);
  client.gapGraceMs = gapGraceMs;
  const sent = [];
  client.socket = { readyState: 1, send: (frame) => sent.push(toHex(frame)), close: () => sent.push("closed") };
  let index = 0;
  client.header = () => fromJson(header[index++]);
  client.messageId = () => fromJson(header[index++]).message_id;
  const events = [];
  for (const type of ["result", "notification", "trust-log", "sequence", "trust"]) {
    client.addEventListener(type, ({ detail }) => {
      if (detail.result) events.push({ type, result: describeResult(detail.result) });
      else if (detail.error) events.push({ type, ...trustFailure(detail.error) });
      else events.push({ type, ...toJson(detail) });
    });
  }
  const outcomes = calls.map(([method, args]) => {
    const outcome = { state: "pending" };
    client[method](...fromJson(args)).then(
      (value) => Object.assign(outcome, { state: "resolved", value }),
      (error) => Object.assign(outcome, { state: "rejected", error: error.message }),
    );
    return outcome;
  });
  while (sent.length < calls.length) await new Promise((resolve) => setTimeout(resolve, 5));
  for (const hex of list) {
    const bytes = fromHex(hex);
    await client.receive(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)).catch((error) => {
      if (error instanceof TrustError) client.refuse(error);
      else events.push({ type: "error", error: error.message });
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await client.outbox;
  await new Promise((resolve) => setTimeout(resolve, gapGraceMs + 20));
  const results = outcomes.map(({ state, value, error }) => ({
    state,
    error,
    value: value && value._type === "QuantumInfoResponse" ? { items: value.items.length } : describeResult(value),
  }));
  const version = toJson(chain.head.version);
  return { sent, results, events, stats: client.stats, accountId: toJson(client.accountId), version };
}

const jobs = { roundTrip, rejects, frames, openFrames, verify, counterparties, strkeys, digests, chains, chainFetch, pins, session };
let input = "";
for await (const chunk of process.stdin) input += chunk;
const job = JSON.parse(input);
const answer = await jobs[job.job](job.args);
// Exit only once stdout is flushed: a pipe write is asynchronous and large answers would be cut.
process.stdout.write(JSON.stringify(answer), () => process.exit(0));
