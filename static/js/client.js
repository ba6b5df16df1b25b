// Browser client of a node's gateway (/ws/, docs/protocol.md), ported from
// constellation_client/client.py: learn the auditor keys from /api/constellation/info, open the
// WebSocket, sign back the handshake challenge, send signed requests, open every server frame
// (alpha's signature, or none for a quantum result: see openFrame) and verify every quantum
// result (payload proof and auditor signatures).
//
// Events (EventTarget): "connection" {state: connecting|connected|reconnecting|failed, text},
// "result" {result} whenever a request's result changes (acknowledged, more signatures,
// finalized), "notification" {result} for someone else's quantum touching this account.
// A lost connection reconnects by itself with a growing delay, and says so.

import { concatBytes, decodePublicKey, equalBytes, sha256, verifySignature } from "./keys.js";
import { checkResult } from "./verify.js";
import { decodePrefix, encode, LIMITS, XdrError } from "./xdr.js";

const KEY_LENGTH = 32;
const SIGNATURE_TAIL = KEY_LENGTH + 64;
// Messages the node may send unsigned (MessageEnvelopeSignless): quantum results without
// account data, whose payload proof is verified anyway (quanta/core/envelopes.py,
// may_be_signless). Account data lies outside the proof, so it must come signed.
const SIGNLESS_MESSAGES = new Set(["QuantumResultMessage"]);

function maySignless(message) {
  return SIGNLESS_MESSAGES.has(message._type) && message.account_data == null;
}
const REQUEST_TIMEOUT_MS = 30000;
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 5000];

export const STATUS_TEXT = {
  200: "success",
  400: "the request is invalid",
  401: "not authorized",
  403: "forbidden",
  413: "the request is too large",
  429: "too many requests, please slow down",
  450: "the constellation is not ready yet",
  500: "the node had an internal error",
  550: "snapshot validation failed",
  551: "unexpected message",
};

/** Returns the constellation a client trusts from /api/constellation/info JSON. */
export function constellationFromInfo(info) {
  if (!Array.isArray(info.auditors) || typeof info.alpha !== "string") {
    throw new Error("the constellation is not initialized yet");
  }
  const auditorKeys = info.auditors.map((auditor) => decodePublicKey(auditor.public_key));
  const alphaKey = decodePublicKey(info.alpha);
  const alphaIndex = auditorKeys.findIndex((key) => equalBytes(key, alphaKey));
  if (alphaIndex < 0) throw new Error("alpha's key is not among the auditors");
  return { auditorKeys, alphaIndex, alphaKey, quoteAsset: info.quote_asset, info };
}

/** Returns the message of a server frame (docs/protocol.md, "Frames"): a MessageEnvelope
 * signed by `alphaKey` (the Message XDR, then 32-byte signer and 64-byte signature), or a
 * MessageEnvelopeSignless (the Message XDR alone) holding a quantum result, whose proof the
 * caller verifies. The Message is self-delimiting, so what follows it tells the forms apart;
 * anything else throws. Ported from constellation_client/wire.py open_frame. */
export async function openFrame(bytes, alphaKey) {
  let decoded;
  try {
    decoded = decodePrefix("Message", bytes);
  } catch (error) {
    throw new Error(`malformed frame from the node: ${error.message}`);
  }
  const { value: message, length } = decoded;
  const tail = bytes.length - length;
  if (tail === 0) {
    if (!maySignless(message)) {
      throw new Error(`unsigned ${message._type} from the node`);
    }
    return message;
  }
  if (tail !== SIGNATURE_TAIL) {
    throw new Error(
      `malformed frame from the node: ${tail} bytes after the message, ` +
        `expected 0 or a ${SIGNATURE_TAIL}-byte signature`,
    );
  }
  const signer = bytes.subarray(length, length + KEY_LENGTH);
  if (!equalBytes(signer, alphaKey)) throw new Error("a frame was not signed by alpha's key");
  const digest = await sha256(bytes.subarray(0, length));
  if (!(await verifySignature(signer, digest, bytes.subarray(length + KEY_LENGTH)))) {
    throw new Error("invalid signature on a frame from the node");
  }
  return message;
}

/** Strictly increasing nonces: max(last + 1, time in microseconds). */
export class NonceSource {
  constructor() {
    this.last = 0n;
  }

  next() {
    const now = BigInt(Date.now()) * 1000n;
    this.last = this.last + 1n > now ? this.last + 1n : now;
    return this.last;
  }

  observe(nonce) {
    if (BigInt(nonce) > this.last) this.last = BigInt(nonce);
  }
}

/** What a request became; updated in place as more signatures arrive. */
export class RequestResult {
  constructor(messageId, status, description, label) {
    Object.assign(this, { messageId, status, description, label });
    Object.assign(this, { apex: 0n, acknowledged: false, finalized: false });
    Object.assign(this, { signaturesVerified: 0, effects: null, accountData: null });
  }

  get ok() {
    return this.status === 200;
  }

  /** Takes in a (possibly later, better signed) QuantumResultMessage of the same quantum. */
  async update(message, constellation) {
    if (this.apex && message.apex !== this.apex) return false;
    const check = await checkResult(message, constellation);
    if (!check.payloadValid || check.validCount < this.signaturesVerified) return false;
    this.apex = message.apex;
    this.status = message.status;
    this.effects = message.effects.find((info) => info._type === "EffectsGroup") || this.effects;
    this.accountData = message.account_data || this.accountData;
    this.acknowledged = this.acknowledged || check.alphaSigned;
    this.finalized = this.finalized || check.isFinal;
    this.signaturesVerified = check.validCount;
    this.auditorCount = constellation.auditorKeys.length;
    return true;
  }
}

export class ConstellationClient extends EventTarget {
  constructor(baseUrl, keyPair) {
    super();
    this.baseUrl = new URL(baseUrl);
    this.keyPair = keyPair;
    this.constellation = null;
    this.accountId = 0n;
    this.nonces = new NonceSource();
    this.nextMessageId = BigInt(Date.now()) * 1000n;
    this.pending = new Map();
    this.unfinalized = new Map();
    this.socket = null;
    this.closed = false;
    this.attempt = 0;
    this.inbox = Promise.resolve();
    this.outbox = Promise.resolve();
    this.ready = null;
  }

  /** Loads the constellation info and connects; resolves once the handshake succeeded. */
  async start() {
    await this.loadInfo();
    return this.connect();
  }

  async loadInfo() {
    const response = await fetch(new URL("/api/constellation/info", this.baseUrl));
    if (!response.ok) throw new Error(`the node answered HTTP ${response.status} for its info`);
    this.info = await response.json();
    this.constellation = constellationFromInfo(this.info);
    return this.info;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    const url = new URL("/ws/", this.baseUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.emit("connection", { state: this.attempt ? "reconnecting" : "connecting" });
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.ready = new Promise((resolve, reject) => {
      this.handshakeDone = { resolve, reject };
    });
    socket.onmessage = (event) => {
      // Frames are verified asynchronously; chaining keeps them in arrival order.
      this.inbox = this.inbox.then(() => this.receive(event.data)).catch((error) => {
        this.emit("connection", { state: "failed", text: error.message });
        socket.close();
      });
    };
    socket.onclose = () => this.lost(socket);
    return this.ready;
  }

  lost(socket) {
    if (socket !== this.socket) return;
    this.handshakeDone.reject(new Error("connection lost"));
    for (const { reject } of this.pending.values()) reject(new Error("the connection was lost"));
    this.pending.clear();
    if (this.closed) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.attempt += 1;
    const seconds = (delay / 1000).toFixed(1);
    this.emit("connection", {
      state: "reconnecting",
      text: `Connection to the node lost; reconnecting in ${seconds} s (attempt ${this.attempt})`,
    });
    setTimeout(() => this.connect().catch(() => {}), delay);
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }

  async receive(data) {
    if (!(data instanceof ArrayBuffer)) throw new Error("the node sent a text frame");
    await this.dispatch(await openFrame(new Uint8Array(data), this.constellation.alphaKey));
  }

  async dispatch(message) {
    if (message._type === "HandshakeRequest") return this.answerHandshake(message);
    if (message._type === "ClientConnectionSuccess") {
      this.accountId = message.account_id;
      this.attempt = 0;
      this.emit("connection", { state: "connected", accountId: this.accountId });
      return this.handshakeDone.resolve(this);
    }
    const id = message.message_id;
    if (message._type === "QuantumResultMessage" && this.unfinalized.has(id)) {
      return this.improve(this.unfinalized.get(id), message);
    }
    if (this.pending.has(id)) {
      const waiter = this.pending.get(id);
      this.pending.delete(id);
      if (message._type !== "QuantumResultMessage") return waiter.resolve(message);
      return waiter.resolve(await this.track(message, waiter.label));
    }
    if (id === 0n) return this.notify(message);
    if (message._type === "ResultMessage" && message.status === 401) {
      this.handshakeDone.reject(new Error(`handshake refused: ${message.description}`));
    }
    return undefined;
  }

  answerHandshake(challenge) {
    const response = {
      _type: "HandshakeResponse",
      message_id: this.messageId(),
      handshake_data: challenge.handshake_data,
    };
    return this.send(response);
  }

  /** Turns a request's first quantum result into a tracked RequestResult. This runs in the
   * inbox chain, before the next frame is read, so a finalization arriving right after the
   * acknowledgement always finds the result registered. */
  async track(message, label) {
    const result = new RequestResult(message.message_id, message.status, message.description, label);
    await result.update(message, this.constellation);
    if (result.accountData) this.nonces.observe(result.accountData.nonce);
    if (result.ok && !result.finalized) this.unfinalized.set(result.messageId, result);
    return result;
  }

  async improve(result, message) {
    if (await result.update(message, this.constellation)) {
      if (result.finalized) this.unfinalized.delete(result.messageId);
      this.emit("result", { result });
    }
  }

  async notify(message) {
    if (message._type !== "QuantumResultMessage") return;
    const result = new RequestResult(0n, message.status, message.description, "notification");
    await result.update(message, this.constellation);
    this.emit("notification", { result });
  }

  messageId() {
    this.nextMessageId += 1n;
    return this.nextMessageId;
  }

  /** Signs and sends one message. Sends are chained: signing is asynchronous, and frames
   * must leave in the order their nonces were handed out or the node refuses the later ones. */
  send(message) {
    const sent = this.outbox.then(() => this.sendNow(message));
    this.outbox = sent.catch(() => {});
    return sent;
  }

  async sendNow(message) {
    const body = encode("Message", message);
    const signature = await this.keyPair.sign(await sha256(body));
    const frame = concatBytes(body, this.keyPair.publicKey, signature);
    if (frame.length > LIMITS.ENVELOPE_BYTES_MAX) throw new XdrError("the request is too large");
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      throw new Error("not connected to the node (reconnecting)");
    }
    this.socket.send(frame);
  }

  /** Sends a request and resolves with the node's first answer to it. */
  ask(message, label = "") {
    return new Promise((resolve, reject) => {
      const id = message.message_id;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("the node did not answer within 30 s"));
      }, REQUEST_TIMEOUT_MS);
      const settle = (fn) => (value) => {
        clearTimeout(timer);
        fn(value);
      };
      this.pending.set(id, { label, resolve: settle(resolve), reject: settle(reject) });
      this.send(message).catch((error) => {
        this.pending.delete(id);
        settle(reject)(error);
      });
    });
  }

  /** Sends a quantum request; returns its RequestResult (rejected, or acknowledged and
   * tracked until a majority of auditors signed it). */
  async quantum(type, fields, label) {
    const message = { _type: type, ...this.header(), ...fields };
    const answer = await this.ask(message, label);
    if (answer._type === "ResultMessage") {
      return new RequestResult(message.message_id, answer.status, answer.description, label);
    }
    this.emit("result", { result: answer });
    return answer;
  }

  header() {
    return { message_id: this.messageId(), account: this.keyPair.publicKey, nonce: this.nonces.next() };
  }

  accountData() {
    return this.quantum("AccountDataRequest", {}, "account data");
  }

  pay(destination, asset, amount) {
    const fields = { asset, amount, destination: decodePublicKey(destination) };
    return this.quantum("PaymentRequest", fields, `pay ${asset}`);
  }

  placeOrder(asset, side, amount, price, timeInForce) {
    const fields = { asset, side, amount, price, time_in_force: timeInForce };
    return this.quantum("OrderRequest", fields, `${side === 1 ? "sell" : "buy"} ${asset}`);
  }

  cancelOrder(orderId) {
    return this.quantum("OrderCancellationRequest", { order_id: BigInt(orderId) }, "cancel order");
  }

  withdraw(provider, asset, amount, destination, fee) {
    const fields = { provider, asset, amount, destination, fee };
    return this.quantum("WithdrawalRequest", fields, `withdraw ${asset}`);
  }

  /** Returns a page of the account's final quanta (QuantumInfoResponse), newest first. */
  async history(limit = 50) {
    const message = {
      _type: "QuantumInfoRequest",
      message_id: this.messageId(),
      account: this.keyPair.publicKey,
      cursor: 0n,
      order: 1,
      limit,
    };
    const answer = await this.ask(message);
    if (answer._type === "ResultMessage") {
      const error = new Error(answer.description || STATUS_TEXT[answer.status]);
      error.status = answer.status;
      throw error;
    }
    return answer;
  }
}
