// Browser client of a node's gateway (/ws/, docs/protocol.md), ported from
// constellation_client/client.py. It trusts nothing the node says on its own word:
// - the keys come from the settings chain verified from the pinned constellation id
//   (chain.js), refreshed at every (re)connection, never from /api/constellation/info;
// - every frame is opened with alpha's key from the verified head and the constellation's
//   bound message digest (domain.js), the HandshakeRequest included; the client signs its
//   requests and its HandshakeResponse the same way;
// - a quantum result completes a request only if its proven own effects group carries a
//   NonceUpdate with that request's nonce: success comes from the proof, never from the
//   unsigned status or message id; a rejection whose signature does not verify is
//   "unverified", not a refusal;
// - each account's `account_sequence` is tracked: a result for a sequence already taken by
//   another quantum, or below what the history proved, is a replay and is ignored (counted
//   and logged), a jump is reported.
//
// Events (EventTarget): "connection" {state: connecting|connected|reconnecting|failed, text},
// "result" {result} whenever a tracked result changes (more signatures, finalized),
// "notification" {result} for a new proven quantum of this account that answers none of our
// requests, "sequence" {account, from, to, missed} on a jump still open after a grace
// period (others' quanta are notified when final, so an acknowledgement of our own next
// request may come first), "trust-log" {kind, text, stats}
// for everything ignored or unverified, and "trust" {error} when the node cannot be trusted
// at all (the client then stops for good).

import { TrustError } from "./chain.js";
import { messageDigest } from "./domain.js";
import { concatBytes, decodePublicKey, equalBytes, verifySignature } from "./keys.js";
import { checkHistoryItem, checkResult, createsAccount, ownGroup, requestNonce } from "./verify.js";
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
// How long another node may take to serve its settings chain when the page's node does not.
const FOLLOW_FETCH_TIMEOUT_MS = 5000;
// What a replaced alpha answers (quanta/core/alpha.py, stop_replaced).
const REPLACED_TEXT = "replaced by the alpha at ";
// Sequences remembered per account; older ones fall below the account's baseline.
const SEQUENCES_KEPT = 1000;
// How long skipped sequences may take to arrive before the jump is reported.
const SEQUENCE_GAP_GRACE_MS = 5000;

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

/** A server frame that does not verify; `decoded` is its message when it could be read,
 * `otherSigner` tells that it was signed by another key than alpha's. */
export class FrameError extends Error {
  name = "FrameError";

  constructor(text, decoded = null, otherSigner = false) {
    super(text);
    Object.assign(this, { decoded, otherSigner });
  }
}

/** Returns the message of a server frame (docs/protocol.md, "Frames"): a MessageEnvelope
 * signed by `alphaKey` over the constellation's message digest (the Message XDR, then 32-byte
 * signer and 64-byte signature), or a MessageEnvelopeSignless (the Message XDR alone) holding
 * a quantum result, whose proof the caller verifies. The Message is self-delimiting, so what
 * follows it tells the forms apart; anything else throws a FrameError. Ported from
 * constellation_client/wire.py open_frame. */
export async function openFrame(bytes, alphaKey, constellationId) {
  let decoded;
  try {
    decoded = decodePrefix("Message", bytes);
  } catch (error) {
    throw new FrameError(`malformed frame from the node: ${error.message}`);
  }
  const { value: message, length } = decoded;
  const tail = bytes.length - length;
  if (tail === 0) {
    if (!maySignless(message)) {
      throw new FrameError(`unsigned ${message._type} from the node`, message);
    }
    return message;
  }
  if (tail !== SIGNATURE_TAIL) {
    throw new FrameError(
      `malformed frame from the node: ${tail} bytes after the message, ` +
        `expected 0 or a ${SIGNATURE_TAIL}-byte signature`,
      message,
    );
  }
  const signer = bytes.subarray(length, length + KEY_LENGTH);
  if (!equalBytes(signer, alphaKey)) throw new FrameError("a frame was not signed by alpha's key", message, true);
  const digest = await messageDigest(constellationId, bytes.subarray(0, length));
  if (!(await verifySignature(signer, digest, bytes.subarray(length + KEY_LENGTH)))) {
    throw new FrameError("invalid signature on a frame from the node", message);
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

/** Per account: which quantum (apex) took each `account_sequence`, the highest seen, and the
 * baseline at or below which every quantum is known (from the verified history). */
export class SequenceTracker {
  constructor() {
    this.accounts = new Map();
  }

  state(account) {
    if (!this.accounts.has(account)) this.accounts.set(account, { last: null, baseline: null, seen: new Map() });
    return this.accounts.get(account);
  }

  /** Tells what a proven result of `account` at `sequence` for quantum `apex` is: "replay"
   * (the sequence belongs to another quantum, or lies at or below the baseline without being
   * known), "repeat" (that quantum, already final), "update" (that quantum, seen before) or
   * "new" (`missed` > 0 when sequences were skipped since the last one seen). */
  classify(account, sequence, apex) {
    const state = this.state(account);
    const seen = state.seen.get(sequence);
    if (seen) {
      if (seen.apex !== apex) return { kind: "replay", takenBy: seen.apex };
      return { kind: seen.final ? "repeat" : "update" };
    }
    if (state.baseline !== null && sequence <= state.baseline) return { kind: "replay", baseline: state.baseline };
    const missed = state.last !== null && sequence > state.last + 1n ? sequence - state.last - 1n : 0n;
    return { kind: "new", missed, last: state.last };
  }

  mark(account, sequence, apex, final) {
    const state = this.state(account);
    const known = state.seen.get(sequence);
    state.seen.delete(sequence);
    state.seen.set(sequence, { apex, final: final || Boolean(known && known.final) });
    if (state.last === null || sequence > state.last) state.last = sequence;
    while (state.seen.size > SEQUENCES_KEPT) {
      const [oldest] = state.seen.keys();
      state.seen.delete(oldest);
      if (state.baseline === null || oldest > state.baseline) state.baseline = oldest;
    }
  }

  /** Returns how many sequences between `from` and `to` (both excluded) were not seen. */
  missing(account, from, to) {
    let found = 0n;
    for (const sequence of this.state(account).seen.keys()) if (sequence > from && sequence < to) found += 1n;
    return to - from - 1n - found;
  }

  /** Records a final quantum of the verified history: everything at or below it is known. */
  markFinal(account, sequence, apex) {
    this.mark(account, sequence, apex, true);
    const state = this.state(account);
    if (state.baseline === null || sequence > state.baseline) state.baseline = sequence;
  }
}

/** What a request became; updated in place as more signatures arrive. `kind` is "executed"
 * (a proven quantum carrying the request's nonce), "rejected" (a refusal signed by alpha) or
 * "unverified" (an answer whose signature does not verify: the outcome is unknown). */
export class RequestResult {
  constructor(messageId, label, kind = "executed") {
    Object.assign(this, { messageId, label, kind, status: kind === "executed" ? 200 : 0, description: "" });
    Object.assign(this, { apex: 0n, acknowledged: false, finalized: false });
    Object.assign(this, { signaturesVerified: 0, auditorCount: 0, effects: null, accountData: null });
  }

  static rejected(messageId, label, status, description) {
    return Object.assign(new RequestResult(messageId, label, "rejected"), { status, description });
  }

  static unverified(messageId, label, description) {
    return Object.assign(new RequestResult(messageId, label, "unverified"), { description });
  }

  get ok() {
    return this.kind === "executed";
  }

  get unverified() {
    return this.kind === "unverified";
  }

  /** Takes in a proven QuantumResultMessage of this quantum (`check` from checkResult,
   * `group` its own effects group); returns false if it brings fewer signatures. */
  take(message, check, group, constellation) {
    if (this.apex && message.apex !== this.apex) return false;
    if (check.validCount < this.signaturesVerified) return false;
    this.apex = message.apex;
    this.effects = group;
    // The other accounts the quantum touched (their groups are hashes here; account 0 is
    // the constellation's own): the counterparty of a payment, covered by the same proof.
    this.otherAccounts = message.effects
      .filter((info) => info._type !== "EffectsGroup" && BigInt(info.account) !== 0n && BigInt(info.account) !== BigInt(group.account))
      .map((info) => info.account);
    this.accountData = message.account_data || this.accountData;
    this.acknowledged = this.acknowledged || check.alphaSigned;
    this.finalized = this.finalized || check.isFinal;
    this.signaturesVerified = check.validCount;
    this.auditorCount = constellation.auditorKeys.length;
    return true;
  }
}

export class ConstellationClient extends EventTarget {
  /** `chain` is the SettingsChain verified from the pin (chain.js); it is refreshed at every
   * connection and its head gives every key the client trusts. */
  constructor(baseUrl, keyPair, chain, fetcher = (url, signal) => fetch(url, { signal })) {
    super();
    this.baseUrl = new URL(baseUrl);
    this.keyPair = keyPair;
    this.chain = chain;
    this.fetcher = fetcher;
    this.accountId = 0n;
    this.nonces = new NonceSource();
    this.sequences = new SequenceTracker();
    this.stats = { replays: 0, repeats: 0, unproven: 0, unverified: 0, jumps: 0 };
    this.gapGraceMs = SEQUENCE_GAP_GRACE_MS;
    this.nextMessageId = BigInt(Date.now()) * 1000n;
    this.pending = new Map();
    this.byNonce = new Map();
    this.unfinalized = new Map();
    this.socket = null;
    this.closed = false;
    this.attempt = 0;
    this.inbox = Promise.resolve();
    this.outbox = Promise.resolve();
    this.ready = null;
    // The alpha the page's node was when the page connected first: while the verified head
    // names it, the page talks to its own node; once a verified update names another (an
    // alpha replacement, docs/admin.md), it connects to the address the settings give it.
    this.firstAlpha = null;
    this.replaced = false;
  }

  /** The verified head: constellation id, alpha's key and index, auditor keys. */
  get constellation() {
    return this.chain.constellation;
  }

  get constellationId() {
    return this.chain.constellationId;
  }

  /** Connects; resolves once the handshake succeeded. */
  start() {
    return this.connect();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Counts and reports something ignored or unverified. */
  note(kind, text) {
    if (kind in this.stats) this.stats[kind] += 1;
    this.emit("trust-log", { kind, text, stats: { ...this.stats } });
  }

  /** Stops for good: what the node serves cannot be trusted. */
  refuse(error) {
    this.closed = true;
    if (this.socket) this.socket.close();
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
    this.byNonce.clear();
    this.emit("trust", { error });
  }

  async connect() {
    this.emit("connection", { state: this.attempt ? "reconnecting" : "connecting" });
    try {
      // The settings may have moved on (new auditors, a new alpha): verify forward first.
      await this.refreshChain();
    } catch (error) {
      if (error instanceof TrustError) this.refuse(error);
      else this.retry(`Cannot read the settings chain (${error.message})`);
      throw error;
    }
    const url = new URL("/ws/", this.alphaUrl());
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.ready = new Promise((resolve, reject) => {
      this.handshakeDone = { resolve, reject };
    });
    socket.onmessage = (event) => {
      // Frames are verified asynchronously; chaining keeps them in arrival order.
      this.inbox = this.inbox.then(() => this.receive(event.data)).catch((error) => {
        if (error instanceof TrustError) return this.refuse(error);
        this.emit("connection", { state: "failed", text: error.message });
        return socket.close();
      });
    };
    socket.onclose = () => this.lost(socket);
    return this.ready;
  }

  /** Extends the verified chain from the page's node; if that node does not answer (dead) or
   * said it was replaced, from the other nodes the verified head names too, each chain
   * verified from the pin as always (a node's word moves nothing; a forged chain from another
   * node is noted and skipped). */
  async refreshChain() {
    let failure = null;
    try {
      await this.chain.refresh(this.baseUrl, this.fetcher);
    } catch (error) {
      if (error instanceof TrustError) throw error;
      failure = error;
    }
    if (!this.firstAlpha) this.firstAlpha = this.constellation.alphaKey;
    if (!failure && !this.replaced) return;
    let reached = !failure;
    for (const address of this.otherNodes()) {
      try {
        await this.chain.refresh(address, (url) => this.fetcher(url, AbortSignal.timeout(FOLLOW_FETCH_TIMEOUT_MS)));
        reached = true;
      } catch (error) {
        if (error instanceof TrustError) this.note("unverified", `${address}: ${error.message}`);
      }
    }
    if (!reached) throw failure;
    this.replaced = false;
  }

  /** The addresses the verified head gives the nodes, but the page's own. */
  otherNodes() {
    const own = this.baseUrl.origin;
    const addresses = this.constellation.settings.auditors.map((auditor) => auditor.address);
    return addresses.filter((address) => {
      try {
        return new URL(address).origin !== own;
      } catch {
        return false; // not an address a page can reach
      }
    });
  }

  /** The node to connect to: the page's own while the verified head names the alpha it was
   * at first, else the address the head gives its alpha. */
  alphaUrl() {
    const head = this.constellation;
    if (!this.firstAlpha || equalBytes(head.alphaKey, this.firstAlpha)) return this.baseUrl;
    const alpha = head.settings.auditors.find((auditor) => equalBytes(auditor.public_key, head.alphaKey));
    return alpha ? new URL(alpha.address) : this.baseUrl;
  }

  lost(socket) {
    if (socket !== this.socket) return;
    this.handshakeDone.reject(new Error("connection lost"));
    for (const { reject } of this.pending.values()) reject(new Error("the connection was lost"));
    this.pending.clear();
    this.byNonce.clear();
    if (this.closed) return;
    this.retry("Connection to the node lost");
  }

  retry(what) {
    if (this.closed) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.attempt += 1;
    const seconds = (delay / 1000).toFixed(1);
    this.emit("connection", {
      state: "reconnecting",
      text: `${what}; reconnecting in ${seconds} s (attempt ${this.attempt})`,
    });
    setTimeout(() => this.connect().catch(() => {}), delay);
  }

  /** Alpha said (signed) that it was replaced: the page reconnects, asking the other nodes
   * too where alpha is now; the request it refused is answered as it is, not sent again. */
  leaveReplaced() {
    this.replaced = true;
    if (this.socket) this.socket.close();
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }

  async receive(data) {
    if (!(data instanceof ArrayBuffer)) throw new TrustError("forged-frame", "the node sent a text frame");
    let message;
    try {
      message = await openFrame(new Uint8Array(data), this.constellation.alphaKey, this.constellationId);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      // Another signer may be a new alpha the chain already names: verify forward, once.
      if (error.otherSigner && (await this.chainMoved())) return this.receive(data);
      return this.unverifiedFrame(error);
    }
    return this.dispatch(message);
  }

  /** Refreshes the chain; tells whether its head changed (a TrustError propagates). */
  async chainMoved() {
    const before = this.chain.head && this.chain.head.version;
    try {
      await this.chain.refresh(this.baseUrl, this.fetcher);
    } catch (error) {
      if (error instanceof TrustError) throw error;
      return false;
    }
    return this.chain.head.version !== before;
  }

  /** A frame whose envelope does not verify: an answer we wait for becomes "unverified", a
   * quantum result is still judged by its own proof (without its account data, which only
   * alpha's signature covers), and anything else means the connection cannot be trusted. */
  unverifiedFrame(error) {
    const message = error.decoded;
    const waiter = message && message.message_id !== undefined ? this.pending.get(message.message_id) : undefined;
    if (waiter && message._type !== "QuantumResultMessage") {
      this.forget(waiter);
      const text = `the answer to "${waiter.label}" is not validly signed by alpha (${error.message})`;
      this.note("unverified", `${text}: shown as unverified`);
      if (waiter.quantum) return waiter.resolve(RequestResult.unverified(waiter.messageId, waiter.label, text));
      return waiter.reject(new Error(text));
    }
    if (message && message._type === "QuantumResultMessage") {
      if (message.account_data) this.note("unverified", `account data ignored: ${error.message}`);
      return this.onQuantumResult({ ...message, account_data: null });
    }
    if (message && message._type === "ResultMessage") {
      return this.note("unverified", `ignored a ResultMessage for no request of ours: ${error.message}`);
    }
    throw new TrustError("forged-frame", `a frame from the node failed verification: ${error.message}`, {
      expected: this.chain.expected(),
    });
  }

  async dispatch(message) {
    if (message._type === "HandshakeRequest") return this.answerHandshake(message);
    if (message._type === "ClientConnectionSuccess") {
      this.accountId = message.account_id;
      this.attempt = 0;
      this.emit("connection", { state: "connected", accountId: this.accountId });
      return this.handshakeDone.resolve(this);
    }
    if (message._type === "QuantumResultMessage") return this.onQuantumResult(message);
    const waiter = this.pending.get(message.message_id);
    if (waiter) {
      this.forget(waiter);
      if (waiter.quantum && message._type === "ResultMessage") {
        const { status, description } = message;
        if (status === 450 && description.includes(REPLACED_TEXT)) this.leaveReplaced();
        return waiter.resolve(RequestResult.rejected(waiter.messageId, waiter.label, status, description));
      }
      return waiter.resolve(message);
    }
    if (message._type === "ResultMessage" && message.status === 401) {
      this.handshakeDone.reject(new Error(`handshake refused: ${message.description}`));
    }
    return undefined;
  }

  /** Handles a QuantumResultMessage: only its proof and its own effects group count. */
  async onQuantumResult(message) {
    const constellation = this.constellation;
    const check = await checkResult(message, constellation);
    if (!check.payloadValid || !check.alphaSigned) {
      return this.note("unproven", `ignored a quantum result (apex ${message.apex}) whose proof does not verify`);
    }
    const publicKey = this.keyPair.publicKey;
    const group = ownGroup(message, this.accountId, publicKey);
    if (!group) {
      return this.note("unproven", `ignored a quantum result (apex ${message.apex}) without effects of this account`);
    }
    if (this.accountId === 0n && group.effects.some((effect) => createsAccount(effect, publicKey))) {
      this.accountId = group.account;
    }
    const { apex } = message;
    const sequence = group.account_sequence;
    const verdict = this.sequences.classify(group.account, sequence, apex);
    if (verdict.kind === "replay") {
      const why =
        verdict.takenBy !== undefined
          ? `already taken by apex ${verdict.takenBy}`
          : `at or below ${verdict.baseline}, already known`;
      return this.note("replays", `ignored a replayed result: apex ${apex}, account sequence ${sequence} (${why})`);
    }
    const tracked = this.unfinalized.get(apex);
    if (tracked) return this.improve(tracked, message, check, group);
    if (verdict.kind !== "new") {
      return this.note("repeats", `ignored a repeated result of apex ${apex} (account sequence ${sequence})`);
    }
    if (verdict.missed > 0n) this.watchGap(group.account, verdict.last, sequence);
    const nonce = requestNonce(group);
    const waiter = nonce === null ? undefined : this.byNonce.get(nonce);
    const result = waiter
      ? new RequestResult(waiter.messageId, waiter.label)
      : new RequestResult(0n, "notification");
    result.take(message, check, group, constellation);
    this.sequences.mark(group.account, sequence, apex, result.finalized);
    if (result.accountData) this.nonces.observe(result.accountData.nonce);
    if (!result.finalized) this.unfinalized.set(apex, result);
    if (!waiter) return this.emit("notification", { result });
    this.forget(waiter);
    return waiter.resolve(result);
  }

  /** Reports a jump from `from` to `to` unless the skipped sequences arrive in time. */
  watchGap(account, from, to) {
    setTimeout(() => {
      const missed = this.sequences.missing(account, from, to);
      if (missed <= 0n) return;
      this.note("jumps", `account sequence jumped from ${from} to ${to}: ${missed} not received`);
      this.emit("sequence", { account, from, to, missed });
    }, this.gapGraceMs);
  }

  improve(result, message, check, group) {
    if (!result.take(message, check, group, this.constellation)) return;
    this.sequences.mark(group.account, group.account_sequence, result.apex, result.finalized);
    if (result.finalized) this.unfinalized.delete(result.apex);
    this.emit("result", { result });
  }

  answerHandshake(challenge) {
    const response = {
      _type: "HandshakeResponse",
      message_id: this.messageId(),
      handshake_data: challenge.handshake_data,
    };
    return this.send(response);
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
    const signature = await this.keyPair.sign(await messageDigest(this.constellationId, body));
    const frame = concatBytes(body, this.keyPair.publicKey, signature);
    if (frame.length > LIMITS.ENVELOPE_BYTES_MAX) throw new XdrError("the request is too large");
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      throw new Error("not connected to the node (reconnecting)");
    }
    this.socket.send(frame);
  }

  forget(waiter) {
    this.pending.delete(waiter.messageId);
    if (waiter.nonce !== null) this.byNonce.delete(waiter.nonce);
  }

  /** Sends a request and resolves with the answer to it: for a quantum request (`nonce`
   * set) a RequestResult, else the node's message. */
  ask(message, label = "", quantum = false) {
    return new Promise((resolve, reject) => {
      const waiter = { messageId: message.message_id, nonce: quantum ? message.nonce : null, label, quantum };
      const timer = setTimeout(() => {
        this.forget(waiter);
        const unknown = quantum
          ? ": it may or may not have been executed, check the history before sending it again"
          : "";
        reject(new Error(`no verified answer from the node within 30 s${unknown}`));
      }, REQUEST_TIMEOUT_MS);
      const settle = (fn) => (value) => {
        clearTimeout(timer);
        fn(value);
      };
      Object.assign(waiter, { resolve: settle(resolve), reject: settle(reject) });
      this.pending.set(waiter.messageId, waiter);
      if (quantum) this.byNonce.set(waiter.nonce, waiter);
      this.send(message).catch((error) => {
        this.forget(waiter);
        waiter.reject(error);
      });
    });
  }

  /** Sends a quantum request; returns its RequestResult (rejected, unverified, or executed
   * and tracked until a majority of auditors signed it). */
  async quantum(type, fields, label) {
    const message = { _type: type, ...this.header(), ...fields };
    const result = await this.ask(message, label, true);
    if (result.ok) this.emit("result", { result });
    return result;
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
    const fields = { asset, side, amount, price, time_in_force: timeInForce, client_order_id: 0n };
    return this.quantum("OrderRequest", fields, `${side === 1 ? "sell" : "buy"} ${asset}`);
  }

  cancelOrder(orderId) {
    return this.quantum("OrderCancellationRequest", { order_id: BigInt(orderId), client_order_id: 0n }, "cancel order");
  }

  /** Cancels every open order of this account in the market of `asset`: an OrderBatchRequest
   * with one BatchCancelAll item (one signature, one quantum, all or nothing). */
  cancelAll(asset) {
    const items = [{ _type: "BatchCancelAll", asset }];
    return this.quantum("OrderBatchRequest", { items }, `cancel all ${asset}`);
  }

  withdraw(provider, asset, amount, destination, fee) {
    const fields = { provider, asset, amount, destination, fee };
    return this.quantum("WithdrawalRequest", fields, `withdraw ${asset}`);
  }

  /** Returns a page of the account's final quanta (QuantumInfoResponse), newest first, with
   * `checks[i]` the signature check of `items[i]` against the verified head; every final
   * item becomes known to the sequence tracker (older results are then replays). */
  /** Returns a page of the account's final quanta, newest first, below apex `cursor` (0n:
   * from the newest); `next_cursor` names the next older page. */
  async history(limit = 50, cursor = 0n) {
    const message = {
      _type: "QuantumInfoRequest",
      message_id: this.messageId(),
      account: this.keyPair.publicKey,
      cursor,
      order: 1,
      limit,
    };
    const answer = await this.ask(message, "history");
    if (answer._type === "ResultMessage") {
      const error = new Error(answer.description || STATUS_TEXT[answer.status]);
      error.status = answer.status;
      throw error;
    }
    answer.checks = [];
    for (const item of answer.items) {
      const check = await checkHistoryItem(item, this.constellation);
      answer.checks.push(check);
      if (check.isFinal) this.sequences.markFinal(item.effects.account, item.effects.account_sequence, item.apex);
    }
    return answer;
  }
}
