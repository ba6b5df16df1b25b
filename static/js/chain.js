// The settings chain, verified forward from a pinned constellation id (spec16.md, "Chain
// verification"). The node serves every signed ConstellationUpdate at
// /api/constellation/settings-chain; the page checks that
//   1. the first one is version 1, its settings hash to the pinned id, and a majority of the
//      auditors it lists signed it;
//   2. each next one is the previous version + 1, signed by a majority of the previous
//      settings' auditors;
// and takes alpha's key and the auditor keys from the head (last) only. Nothing else the node
// says (/api/constellation/info included) ever decides which keys are trusted. Any failure is
// a TrustError naming what was expected and what was served.

import { constellationIdOf, constellationIdText, parseConstellationId, updateDigest } from "./domain.js";
import { equalBytes, toHex, verifySignature } from "./keys.js";
import { majority } from "./verify.js";
import { decode } from "./xdr.js";

export const CHAIN_PATH = "/api/constellation/settings-chain";
export const CHAIN_PAGE_MAX = 64;
// At most this many pages per refresh (4096 updates): a node cannot keep the page fetching.
export const CHAIN_PAGES_MAX = 64;

/** A refusal to trust what the node serves. `reason` is one of "genesis-mismatch",
 * "broken-chain", "bad-pin", "no-chain", "forged-frame"; `expected` and `served` are the ids
 * (hex) when they are known. */
export class TrustError extends Error {
  name = "TrustError";

  constructor(reason, text, { expected = null, served = null } = {}) {
    super(text);
    Object.assign(this, { reason, expected, served });
  }
}

function base64Bytes(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error("not base64");
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

function keysOf(settings) {
  return settings.auditors.map((auditor) => auditor.public_key);
}

/** Throws unless the settings name distinct auditors, alpha among them, and one quote asset:
 * what the trust rules rely on (a repeated key would let one auditor count twice). */
function checkShape(settings, where) {
  const keys = keysOf(settings).map(toHex);
  if (!keys.length) throw new Error(`${where} lists no auditors`);
  if (new Set(keys).size !== keys.length) throw new Error(`${where} lists an auditor twice`);
  if (!keys.includes(toHex(settings.alpha))) throw new Error(`${where}: alpha is not among the auditors`);
  if (settings.assets.filter((asset) => asset.is_quote_asset).length !== 1) {
    throw new Error(`${where} does not have exactly one quote asset`);
  }
}

/** Returns how many distinct keys of `keys` validly signed `digest` in the envelope. */
async function countSigners(envelope, keys, digest) {
  const allowed = new Set(keys.map(toHex));
  const signed = new Set();
  for (const { signer, signature } of envelope.signatures) {
    const hex = toHex(signer);
    if (!allowed.has(hex) || signed.has(hex)) continue;
    if (await verifySignature(signer, digest, signature)) signed.add(hex);
  }
  return signed.size;
}

/** Returns what the rest of the page trusts, from verified settings: alpha's key and index,
 * the auditor keys, the constellation id, and the settings themselves. */
export function constellationOf(constellationId, settings) {
  const auditorKeys = keysOf(settings);
  const alphaIndex = auditorKeys.findIndex((key) => equalBytes(key, settings.alpha));
  const quote = settings.assets.find((asset) => asset.is_quote_asset);
  return {
    constellationId,
    constellationIdText: constellationIdText(constellationId),
    version: settings.version,
    settings,
    auditorKeys,
    alphaIndex,
    alphaKey: settings.alpha,
    quoteAsset: quote.code,
  };
}

/** A chain verified up to its head; `apply` extends it by one served update. */
export class SettingsChain {
  /** `pin` is the pinned id (32 bytes), or null to adopt the genesis served (trust on first
   * use: the caller then pins `constellationId`). */
  constructor(pin = null) {
    this.pin = pin;
    this.constellationId = pin;
    this.head = null;
  }

  get constellation() {
    return this.head && constellationOf(this.constellationId, this.head);
  }

  expected() {
    return this.constellationId ? constellationIdText(this.constellationId) : null;
  }

  broken(text, served = null) {
    return new TrustError("broken-chain", `the settings chain is broken: ${text}`, {
      expected: this.expected(),
      served,
    });
  }

  /** Verifies one served entry {version, envelope (base64)} after the current head. */
  async apply(entry) {
    const position = this.head ? `version ${this.head.version + 1n}` : "the genesis (version 1)";
    let envelope;
    try {
      envelope = decode("ConstellationMessageEnvelope", base64Bytes(entry.envelope));
    } catch (error) {
      throw this.broken(`the entry for ${position} is not a signed settings update (${error.message})`);
    }
    const update = envelope.message;
    if (update._type !== "ConstellationUpdate") {
      throw this.broken(`the entry for ${position} holds a ${update._type}, not a ConstellationUpdate`);
    }
    const { settings } = update;
    const wanted = this.head ? this.head.version + 1n : 1n;
    if (settings.version !== wanted) {
      throw this.broken(`expected ${position}, the node served version ${settings.version}`);
    }
    if (entry.version === undefined || BigInt(entry.version) !== settings.version) {
      throw this.broken(`the entry listed as version ${entry.version} holds version ${settings.version}`);
    }
    if (!this.head) await this.checkGenesis(settings);
    try {
      checkShape(settings, `version ${settings.version}`);
    } catch (error) {
      throw this.broken(error.message);
    }
    const signers = keysOf(this.head || settings);
    const needed = majority(signers.length);
    const valid = await countSigners(envelope, signers, await updateDigest(this.constellationId, update));
    if (valid < needed) {
      const whose = this.head ? `auditors of version ${this.head.version}` : "auditors it lists";
      throw this.broken(
        `version ${settings.version} is validly signed by ${valid} of the ${signers.length} ` +
          `${whose}; ${needed} are required`,
      );
    }
    this.head = settings;
  }

  async checkGenesis(settings) {
    const served = await constellationIdOf(settings);
    if (!this.pin) {
      this.constellationId = served;
      return;
    }
    if (!equalBytes(served, this.pin)) {
      const expected = constellationIdText(this.pin);
      const text = constellationIdText(served);
      throw new TrustError(
        "genesis-mismatch",
        `this node serves another constellation: expected constellation ${expected}, ` +
          `but the genesis settings it serves hash to ${text}`,
        { expected, served: text },
      );
    }
  }

  /** Fetches and verifies every update after the head, page by page (bounded). Network and
   * HTTP failures throw plain Errors (retry later); what cannot be trusted throws TrustError.
   * Refreshes run one after the other: two at once would both apply the same next version. */
  refresh(baseUrl, fetcher = (url) => fetch(url)) {
    const run = (this.queue || Promise.resolve()).then(() => this.refreshNow(baseUrl, fetcher));
    this.queue = run.catch(() => {});
    return run;
  }

  async refreshNow(baseUrl, fetcher) {
    for (let page = 0; page < CHAIN_PAGES_MAX; page++) {
      const after = this.head ? this.head.version : 0n;
      const url = new URL(`${CHAIN_PATH}?after=${after}`, baseUrl);
      const response = await fetcher(url);
      if (!response.ok) throw new Error(`the node answered HTTP ${response.status} for its settings chain`);
      const body = await response.json();
      await this.applyPage(body);
      if (!body.more) return this.constellation;
    }
    throw this.broken(`more than ${CHAIN_PAGES_MAX * CHAIN_PAGE_MAX} updates at once`);
  }

  async applyPage(body) {
    if (!body || !Array.isArray(body.updates)) throw this.broken("the node's answer has no list of updates");
    if (body.updates.length > CHAIN_PAGE_MAX) {
      throw this.broken(`a page holds ${body.updates.length} updates, at most ${CHAIN_PAGE_MAX} are allowed`);
    }
    if (body.more && !body.updates.length) throw this.broken("an empty page says more updates follow");
    if (!this.head && !body.updates.length) {
      if (this.pin) {
        const expected = constellationIdText(this.pin);
        const text = `expected constellation ${expected}, but the node serves no settings at all`;
        throw new TrustError("no-chain", text, { expected });
      }
      throw new Error("the constellation is not initialized yet");
    }
    for (const entry of body.updates) await this.apply(entry);
    // The genesis check above is the one that counts; a node that claims another id than
    // the one its chain hashes to is refused too (it is not the constellation it says).
    const served = body.constellation_id;
    const trusted = constellationIdText(this.constellationId);
    if (served != null && served !== trusted) {
      throw new TrustError(
        "genesis-mismatch",
        `this node says it is constellation ${served}, but constellation ${trusted} was expected`,
        { expected: trusted, served: String(served) },
      );
    }
  }
}

/** Verifies a whole list of entries from the pin (tests, tools); returns the head's trust. */
export async function verifyChain(pin, entries) {
  const chain = new SettingsChain(pin);
  await chain.applyPage({ updates: entries, more: false });
  return chain.constellation;
}

/** Returns the pin asked for in a URL (`?constellation=<hex>` or `#constellation=<hex>`),
 * null if none; a malformed one is a TrustError ("bad-pin"). */
export function pinFromUrl(url) {
  const location = new URL(url);
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const text = location.searchParams.get("constellation") ?? hash.get("constellation");
  if (text == null) return null;
  try {
    return parseConstellationId(text);
  } catch (error) {
    throw new TrustError("bad-pin", `the link's constellation id is unusable: ${error.message}`);
  }
}
