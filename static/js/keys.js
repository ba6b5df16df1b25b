// Ed25519 keys through WebCrypto, SHA-256, and the Stellar strkey text form of keys
// (G... public keys, S... secret seeds): base32 of version byte + 32-byte payload + CRC16-XModem
// (little-endian), exactly as quanta/core/keys.py. The secret seed never leaves the browser.

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const VERSION_PUBLIC_KEY = 6 << 3;
const VERSION_SECRET_SEED = 18 << 3;
// DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

export class InvalidKey extends Error {
  name = "InvalidKey";
}

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (text.length % 2 !== 0 || /[^0-9a-f]/i.test(text)) throw new Error("not hex");
  return Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function crc16Xmodem(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return Uint8Array.from([crc & 0xff, crc >> 8]);
}

function base32Encode(bytes) {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function base32Decode(text) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of text) {
    const digit = BASE32.indexOf(char);
    if (digit < 0) throw new InvalidKey("a key uses only the upper-case base32 alphabet");
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

function strkeyEncode(version, raw) {
  const body = concatBytes(Uint8Array.of(version), raw);
  return base32Encode(concatBytes(body, crc16Xmodem(body)));
}

function strkeyDecode(version, text) {
  if (typeof text !== "string" || text.length !== 56) {
    throw new InvalidKey("a key is 56 characters long");
  }
  const decoded = base32Decode(text);
  const body = decoded.subarray(0, 33);
  if (body[0] !== version) {
    const expected = version === VERSION_PUBLIC_KEY ? "a public key (G...)" : "a secret (S...)";
    throw new InvalidKey(`this is not ${expected}`);
  }
  if (!equalBytes(crc16Xmodem(body), decoded.subarray(33))) {
    throw new InvalidKey("the key's checksum does not match (typo?)");
  }
  return body.slice(1);
}

export const encodePublicKey = (raw) => strkeyEncode(VERSION_PUBLIC_KEY, raw);
export const decodePublicKey = (text) => strkeyDecode(VERSION_PUBLIC_KEY, text.trim());
export const encodeSecret = (seed) => strkeyEncode(VERSION_SECRET_SEED, seed);
export const decodeSecret = (text) => strkeyDecode(VERSION_SECRET_SEED, text.trim());

/** An Ed25519 key pair held as a non-extractable WebCrypto key plus its public key. */
export class KeyPair {
  constructor(privateKey, publicKey, secret) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.secret = secret;
    this.address = encodePublicKey(publicKey);
  }

  /** Returns the key pair of a 32-byte seed. */
  static async fromSeed(seed) {
    const pkcs8 = concatBytes(PKCS8_PREFIX, seed);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
      "sign",
    ]);
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    const publicKey = base64UrlDecode(jwk.x);
    return new KeyPair(privateKey, publicKey, encodeSecret(seed));
  }

  /** Returns the key pair of an S... secret. */
  static fromSecret(secret) {
    return KeyPair.fromSeed(decodeSecret(secret));
  }

  /** Returns a fresh random key pair. */
  static random() {
    return KeyPair.fromSeed(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** Returns the 64-byte signature of `data`. */
  async sign(data) {
    return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, this.privateKey, data));
  }
}

function base64UrlDecode(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)), (c) =>
    c.charCodeAt(0),
  );
}

const verifyKeys = new Map();

/** Tells whether `signature` is `publicKey`'s valid signature of `data` (never throws). */
export async function verifySignature(publicKey, data, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const id = toHex(publicKey);
  try {
    if (!verifyKeys.has(id)) {
      const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
        "verify",
      ]);
      verifyKeys.set(id, key);
    }
    return await crypto.subtle.verify({ name: "Ed25519" }, verifyKeys.get(id), signature, data);
  } catch {
    return false;
  }
}
