// Runs the browser's ES modules under Node for tests/browser/test_xdr_js.py: reads one JSON
// job on stdin, writes one JSON answer on stdout. 64-bit integers travel as {"$big": "123"},
// bytes as {"$hex": "..."}, so nothing is lost on the way.

import { ConstellationClient, openFrame } from "../../static/js/client.js";
import { decodePublicKey, encodePublicKey, fromHex, KeyPair, toHex } from "../../static/js/keys.js";
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

async function frames({ seed, header, calls, nextMessageId }) {
  const keyPair = await KeyPair.fromSeed(fromHex(seed));
  const client = new ConstellationClient("http://127.0.0.1:1/", keyPair);
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

async function openFrames({ alphaKey, frames: list }) {
  const answers = [];
  for (const hex of list) {
    try {
      answers.push({ value: toJson(await openFrame(fromHex(hex), fromHex(alphaKey))) });
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

const jobs = { roundTrip, rejects, frames, openFrames, verify, strkeys };
let input = "";
for await (const chunk of process.stdin) input += chunk;
const job = JSON.parse(input);
const answer = await jobs[job.job](job.args);
// Exit only once stdout is flushed: a pipe write is asynchronous and large answers would be cut.
process.stdout.write(JSON.stringify(answer), () => process.exit(0));
