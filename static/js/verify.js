// Client-side finality check of quantum results, ported from constellation_client/verify.py:
// effects proof = SHA-256 of the concatenated group hashes in the order given (a full group
// hashes as SHA-256 of its XDR); payload hash = bound(QUANTUM, apex uint64 BE ‖ quantum hash ‖
// effects proof) under the constellation id (domain.js) must equal the signed one; then valid
// signatures from distinct auditors are counted, final when they reach a majority (⌊n/2⌋+1)
// with alpha's among them. `constellation` is always the verified head of the settings chain
// (chain.js): its auditor keys, alpha's index and the pinned constellation id.

import { payloadHash } from "./domain.js";
import { concatBytes, equalBytes, sha256, verifySignature } from "./keys.js";
import { decode, encode } from "./xdr.js";

export function majority(auditorCount) {
  return Math.floor(auditorCount / 2) + 1;
}

export async function groupDigest(info) {
  if (info._type === "EffectsGroupHash") return info.hash;
  return sha256(encode("EffectsGroup", info));
}

export async function effectsProof(effects) {
  const digests = [];
  for (const info of effects) digests.push(await groupDigest(info));
  return sha256(concatBytes(...digests));
}

/** Counts valid signatures of `digest` from distinct auditors; tells if they make it final. */
export async function countSignatures(constellation, digest, signatures) {
  const { auditorKeys, alphaIndex } = constellation;
  const accepted = new Set();
  for (const { auditor_index: index, signature } of signatures) {
    if (index < 0 || index >= auditorKeys.length || accepted.has(index)) continue;
    if (await verifySignature(auditorKeys[index], digest, signature)) accepted.add(index);
  }
  const alphaSigned = accepted.has(alphaIndex);
  const isFinal = alphaSigned && accepted.size >= majority(auditorKeys.length);
  return { validCount: accepted.size, alphaSigned, isFinal };
}

/** Checks a QuantumResultMessage's payload proof against its content and the auditor keys. */
export async function checkResult(message, constellation) {
  const claimed = message.payload_proof.payload_hash;
  if (message.quantum_hash.length !== 32) return { payloadValid: false, validCount: 0 };
  const proof = await effectsProof(message.effects);
  const expected = await payloadHash(constellation.constellationId, message.apex, message.quantum_hash, proof);
  if (!equalBytes(expected, claimed)) {
    return { payloadValid: false, alphaSigned: false, validCount: 0, isFinal: false };
  }
  const counted = await countSignatures(constellation, claimed, message.payload_proof.signatures);
  return { payloadValid: true, ...counted };
}

/** Returns the quantum a history item carries once it matches the item (SHA-256 of its XDR
 * is the item's quantum hash, as quanta/core/hashing.py quantum_hash computes it, and it
 * names the item's apex, effects proof and timestamp); null when the item carries none.
 * Throws when it is there but does not match or does not decode. */
export async function itemQuantum(item) {
  if (item.quantum === null || item.quantum === undefined) return null;
  if (!equalBytes(await sha256(item.quantum), item.quantum_hash)) {
    throw new Error("the history item's quantum does not match its quantum hash");
  }
  const quantum = decode("Quantum", item.quantum);
  const same = quantum.apex === item.apex && quantum.timestamp === item.timestamp;
  if (!same || !equalBytes(quantum.effects_proof, item.effects_hash)) {
    throw new Error("the history item's quantum names another apex, effects or time");
  }
  return quantum;
}

/** Tells whether the item's own group is one of its quantum's groups as signed: listed in
 * `group_hashes` under its account with its hash, and those hashes make the effects hash (as
 * constellation_client/verify.py item_group_proven). */
export async function itemGroupProven(item) {
  const own = await groupDigest(item.effects);
  const hashes = item.group_hashes || [];
  const listed = hashes.some((entry) => entry.account === item.effects.account && equalBytes(entry.hash, own));
  if (!listed) return false;
  const proof = await sha256(concatBytes(...hashes.map((entry) => entry.hash)));
  return equalBytes(proof, item.effects_hash);
}

/** Checks one history item: its signed payload hash of (apex, quantum hash, effects hash),
 * its own group against that effects hash (itemGroupProven),
 * and the quantum it carries (if any) against that quantum hash: one that does not match
 * makes the item unverified, like a bad signature. `quantum` is the checked quantum (null
 * when the item carries none): the only source the page names a counterparty from. */
export async function checkHistoryItem(item, constellation) {
  const refused = { validCount: 0, alphaSigned: false, isFinal: false, quantum: null };
  if (item.quantum_hash.length !== 32 || item.effects_hash.length !== 32) return refused;
  if (!(await itemGroupProven(item))) return refused;
  let quantum;
  try {
    quantum = await itemQuantum(item);
  } catch {
    return refused;
  }
  const digest = await payloadHash(constellation.constellationId, item.apex, item.quantum_hash, item.effects_hash);
  return { ...(await countSignatures(constellation, digest, item.signatures)), quantum };
}

/** Returns the result's own effects group: the one full group, for `accountId`, or (before
 * the account has an id) the full group creating an account for `publicKey`; null if none.
 * Other accounts' groups travel as hashes only. */
export function ownGroup(message, accountId, publicKey) {
  const full = message.effects.filter((info) => info._type === "EffectsGroup");
  if (accountId > 0n) return full.find((group) => group.account === accountId) || null;
  return full.find((group) => group.effects.some((effect) => createsAccount(effect, publicKey))) || null;
}

export function createsAccount(effect, publicKey) {
  return effect._type === "AccountCreateEffect" && equalBytes(effect.public_key, publicKey);
}

/** Returns the nonce of the group's NonceUpdateEffect (the request that made the quantum),
 * or null when the quantum was not this account's request. */
export function requestNonce(group) {
  const update = group.effects.find((effect) => effect._type === "NonceUpdateEffect");
  return update ? update.nonce : null;
}
