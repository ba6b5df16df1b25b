// Client-side finality check of quantum results, ported from constellation_client/verify.py:
// effects proof = SHA-256 of the concatenated group hashes in the order given (a full group
// hashes as SHA-256 of its XDR); payload hash = SHA-256(apex uint64 BE ‖ quantum hash ‖
// effects proof) must equal the signed one; then valid signatures from distinct auditors are
// counted, final when they reach a majority (⌊n/2⌋+1) with alpha's among them.

import { concatBytes, equalBytes, sha256, verifySignature } from "./keys.js";
import { encode } from "./xdr.js";

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

export async function payloadHash(apex, quantumHash, effectsHash) {
  const apexBytes = new Uint8Array(8);
  new DataView(apexBytes.buffer).setBigUint64(0, BigInt(apex));
  return sha256(concatBytes(apexBytes, quantumHash, effectsHash));
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
  const expected = await payloadHash(message.apex, message.quantum_hash, proof);
  if (!equalBytes(expected, claimed)) {
    return { payloadValid: false, alphaSigned: false, validCount: 0, isFinal: false };
  }
  const counted = await countSignatures(constellation, claimed, message.payload_proof.signatures);
  return { payloadValid: true, ...counted };
}

/** Checks one history item: its signed payload hash of (apex, quantum hash, effects hash). */
export async function checkHistoryItem(item, constellation) {
  if (item.quantum_hash.length !== 32 || item.effects_hash.length !== 32) {
    return { validCount: 0, alphaSigned: false, isFinal: false };
  }
  const digest = await payloadHash(item.apex, item.quantum_hash, item.effects_hash);
  return countSignatures(constellation, digest, item.signatures);
}
