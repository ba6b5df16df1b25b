// Which constellation a signature belongs to (issue 16, /work/notes/spec16.md; the Python rule
// is quanta/core/signatures.py). Every signed digest hashes the constellation id and a domain
// in front of what it signs, so a signature made for one constellation, or for one purpose,
// is worth nothing anywhere else:
//
//   constellation id = SHA-256(XDR of the genesis ConstellationSettings, version 1)
//   bound digest     = SHA-256(constellation id (32) ‖ uint8 domain ‖ body)
//
// MESSAGE signs every MessageEnvelope (requests, handshake responses, alpha's frames), QUANTUM
// the payload hash of each quantum, SETTINGS each ConstellationUpdate. The text form of an id
// is 64 lowercase hex characters.

import { concatBytes, fromHex, sha256, toHex } from "./keys.js";
import { encode } from "./xdr.js";

export const Domain = Object.freeze({ MESSAGE: 1, QUANTUM: 2, SETTINGS: 3 });
export const CONSTELLATION_ID_LENGTH = 32;
const HASH_LENGTH = 32;
const ID_TEXT = /^[0-9a-f]{64}$/;

function requireId(constellationId) {
  if (!(constellationId instanceof Uint8Array) || constellationId.length !== CONSTELLATION_ID_LENGTH) {
    throw new Error("a constellation id has 32 bytes");
  }
}

/** Returns SHA-256(constellation id ‖ uint8 domain ‖ body). */
export function boundDigest(constellationId, domain, body) {
  requireId(constellationId);
  if (!Object.values(Domain).includes(domain)) throw new Error(`unknown signature domain ${domain}`);
  return sha256(concatBytes(constellationId, Uint8Array.of(domain), body));
}

/** Returns what a MessageEnvelope's signature covers: `messageXdr` is the enveloped Message
 * union's XDR, i.e. the frame minus its last 96 bytes. */
export function messageDigest(constellationId, messageXdr) {
  return boundDigest(constellationId, Domain.MESSAGE, messageXdr);
}

/** Returns the payload hash every node signs for a quantum:
 * bound(QUANTUM, apex uint64 BE ‖ quantum hash ‖ effects hash). */
export function payloadHash(constellationId, apex, quantumHash, effectsHash) {
  if (quantumHash.length !== HASH_LENGTH || effectsHash.length !== HASH_LENGTH) {
    throw new Error("quantum and effects hashes have 32 bytes");
  }
  const apexBytes = new Uint8Array(8);
  new DataView(apexBytes.buffer).setBigUint64(0, BigInt(apex));
  return boundDigest(constellationId, Domain.QUANTUM, concatBytes(apexBytes, quantumHash, effectsHash));
}

/** Returns what each auditor signs for a ConstellationUpdate (a Message arm, `_type` set);
 * for the genesis update the id is `constellationIdOf(update.settings)`. */
export function updateDigest(constellationId, update) {
  return boundDigest(constellationId, Domain.SETTINGS, encode("Message", update));
}

/** Returns the id of the constellation whose genesis settings these are. */
export function constellationIdOf(genesisSettings) {
  return sha256(encode("ConstellationSettings", genesisSettings));
}

/** Returns the 32 bytes of an id's text form; throws saying what is wrong. Upper-case hex
 * is accepted (people copy ids around), the canonical form is lower case. */
export function parseConstellationId(text) {
  const normalized = String(text).trim().toLowerCase();
  if (!ID_TEXT.test(normalized)) {
    throw new Error(`a constellation id is 64 hex characters, got ${JSON.stringify(String(text).slice(0, 80))}`);
  }
  return fromHex(normalized);
}

export function constellationIdText(constellationId) {
  return toHex(constellationId);
}

/** Returns the short form people compare at a glance: the first 8 and last 4 characters. */
export function shortConstellationId(text) {
  return `${text.slice(0, 8)}…${text.slice(-4)}`;
}
