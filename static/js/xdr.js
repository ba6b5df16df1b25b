// XDR (RFC 4506) codec driven by the exported Python schema (schema.js, written by
// tools/export_schema.py), so the browser encodes every message byte for byte as the nodes do.
//
// Values: a struct is a plain object with the Python field names; decoding adds `_type` (the
// struct name), and a union value must carry `_type` to select its arm. 64-bit integers are
// BigInt, 32-bit integers, enums and doubles are Number, opaque data is Uint8Array, optional
// values are null when absent. Decoding is as strict as the Python codec: trailing bytes,
// non-zero padding, bad booleans, unknown enum values and over-long data are XdrError.

import { SCHEMA } from "./schema.js";

export class XdrError extends Error {
  name = "XdrError";
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

class Writer {
  constructor() {
    this.bytes = new Uint8Array(256);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
  }

  reserve(size) {
    if (this.length + size <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < this.length + size) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  uint32(value) {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
  }

  int32(value) {
    this.reserve(4);
    this.view.setInt32(this.length, value);
    this.length += 4;
  }

  uint64(value) {
    this.reserve(8);
    this.view.setBigUint64(this.length, value);
    this.length += 8;
  }

  int64(value) {
    this.reserve(8);
    this.view.setBigInt64(this.length, value);
    this.length += 8;
  }

  double(value) {
    this.reserve(8);
    this.view.setFloat64(this.length, value);
    this.length += 8;
  }

  padded(data) {
    const size = (data.length + 3) & ~3;
    this.reserve(size);
    this.bytes.set(data, this.length);
    this.bytes.fill(0, this.length + data.length, this.length + size);
    this.length += size;
  }

  result() {
    return this.bytes.slice(0, this.length);
  }
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.position = 0;
  }

  need(size) {
    if (this.position + size > this.bytes.length) {
      throw new XdrError(`truncated: need ${size} bytes at offset ${this.position}`);
    }
    const start = this.position;
    this.position += size;
    return start;
  }

  uint32() {
    return this.view.getUint32(this.need(4));
  }

  int32() {
    return this.view.getInt32(this.need(4));
  }

  uint64() {
    return this.view.getBigUint64(this.need(8));
  }

  int64() {
    return this.view.getBigInt64(this.need(8));
  }

  double() {
    return this.view.getFloat64(this.need(8));
  }

  padded(size) {
    const padded = (size + 3) & ~3;
    const start = this.need(padded);
    for (let i = start + size; i < start + padded; i++) {
      if (this.bytes[i] !== 0) throw new XdrError(`non-zero padding at offset ${i}`);
    }
    return this.bytes.slice(start, start + size);
  }

  length(maximum, what) {
    const length = this.uint32();
    if (length > maximum) throw new XdrError(`${what} length ${length} exceeds maximum ${maximum}`);
    return length;
  }
}

function toBigInt(value, low, high, name) {
  let big;
  if (typeof value === "bigint") big = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) big = BigInt(value);
  else throw new XdrError(`${name} expects an integer, got ${typeof value}`);
  if (big < low || big > high) throw new XdrError(`${name} out of range: ${big}`);
  return big;
}

function checkInt(value, low, high, name) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < low || value > high) {
    throw new XdrError(`${name} out of range or not an integer: ${value}`);
  }
  return value;
}

function checkBytes(value, what) {
  if (!(value instanceof Uint8Array)) throw new XdrError(`${what} expects a Uint8Array`);
  return value;
}

const primitivePackers = {
  uint32: (w, v) => w.uint32(checkInt(v, 0, 0xffffffff, "uint32")),
  int32: (w, v) => w.int32(checkInt(v, -0x80000000, 0x7fffffff, "int32")),
  uint64: (w, v) => w.uint64(toBigInt(v, 0n, U64_MAX, "uint64")),
  int64: (w, v) => w.int64(toBigInt(v, I64_MIN, I64_MAX, "int64")),
  double: (w, v) => {
    if (typeof v !== "number") throw new XdrError(`double expects a number, got ${typeof v}`);
    w.double(v);
  },
  bool: (w, v) => {
    if (typeof v !== "boolean") throw new XdrError(`bool expects a boolean, got ${typeof v}`);
    w.uint32(v ? 1 : 0);
  },
};

const primitiveUnpackers = {
  uint32: (r) => r.uint32(),
  int32: (r) => r.int32(),
  uint64: (r) => r.uint64(),
  int64: (r) => r.int64(),
  double: (r) => r.double(),
  bool: (r) => {
    const raw = r.uint32();
    if (raw > 1) throw new XdrError(`bool must be 0 or 1, got ${raw}`);
    return raw === 1;
  },
};

function enumValues(name) {
  const members = SCHEMA.enums[name];
  if (!members) throw new XdrError(`unknown enum ${name}`);
  return new Set(Object.values(members));
}

const enumCache = new Map();

function checkEnum(name, value) {
  if (!enumCache.has(name)) enumCache.set(name, enumValues(name));
  if (typeof value !== "number" || !enumCache.get(name).has(value)) {
    throw new XdrError(`unknown ${name} value ${value}`);
  }
  return value;
}

function unionArm(name, value) {
  const union = SCHEMA.unions[name];
  if (!union) throw new XdrError(`unknown union ${name}`);
  const typeName = value && value._type;
  const entry = Object.entries(union.arms).find(([, arm]) => arm === typeName);
  if (!entry) throw new XdrError(`${typeName} is not an arm of ${name}`);
  return [Number(entry[0]), typeName];
}

function packStruct(writer, name, value) {
  const fields = SCHEMA.structs[name];
  if (!fields) throw new XdrError(`unknown struct ${name}`);
  if (value === null || typeof value !== "object") throw new XdrError(`${name} expects an object`);
  for (const [field, type] of fields) {
    try {
      pack(writer, type, value[field]);
    } catch (error) {
      if (error instanceof XdrError && !error.message.includes(" in ")) {
        error.message = `${error.message} in ${name}.${field}`;
      }
      throw error;
    }
  }
}

function packComposite(writer, type, value) {
  if ("fixed" in type) {
    if (checkBytes(value, "opaque").length !== type.fixed) {
      throw new XdrError(`opaque[${type.fixed}] expects ${type.fixed} bytes`);
    }
    return writer.padded(value);
  }
  if ("opaque" in type) {
    if (checkBytes(value, "opaque").length > type.opaque) {
      throw new XdrError(`opaque<${type.opaque}> expects at most ${type.opaque} bytes`);
    }
    writer.uint32(value.length);
    return writer.padded(value);
  }
  if ("string" in type) {
    if (typeof value !== "string") throw new XdrError("string expects a string");
    const data = utf8Encoder.encode(value);
    if (data.length > type.string) throw new XdrError(`string<${type.string}> too long`);
    writer.uint32(data.length);
    return writer.padded(data);
  }
  if ("array" in type) {
    if (!Array.isArray(value) || value.length > type.max) {
      throw new XdrError(`array<${type.max}> expects an array of at most ${type.max}`);
    }
    writer.uint32(value.length);
    for (const item of value) pack(writer, type.array, item);
    return undefined;
  }
  if ("optional" in type) {
    const present = value !== null && value !== undefined;
    writer.uint32(present ? 1 : 0);
    return present ? pack(writer, type.optional, value) : undefined;
  }
  if ("enum" in type) return writer.int32(checkEnum(type.enum, value));
  if ("struct" in type) return packStruct(writer, type.struct, value);
  if ("union" in type) {
    const [key, arm] = unionArm(type.union, value);
    writer.int32(key);
    return packStruct(writer, arm, value);
  }
  throw new XdrError(`unknown type descriptor ${JSON.stringify(type)}`);
}

function pack(writer, type, value) {
  if (typeof type === "string") return primitivePackers[type](writer, value);
  return packComposite(writer, type, value);
}

function unpackStruct(reader, name) {
  const fields = SCHEMA.structs[name];
  if (!fields) throw new XdrError(`unknown struct ${name}`);
  const value = { _type: name };
  for (const [field, type] of fields) value[field] = unpack(reader, type);
  return value;
}

function unpackComposite(reader, type) {
  if ("fixed" in type) return reader.padded(type.fixed);
  if ("opaque" in type) return reader.padded(reader.length(type.opaque, "opaque"));
  if ("string" in type) {
    const data = reader.padded(reader.length(type.string, "string"));
    try {
      return utf8Decoder.decode(data);
    } catch {
      throw new XdrError("string is not valid UTF-8");
    }
  }
  if ("array" in type) {
    const length = reader.length(type.max, "array");
    if (length * 4 > reader.bytes.length - reader.position) {
      throw new XdrError(`array length ${length} exceeds the remaining input`);
    }
    return Array.from({ length }, () => unpack(reader, type.array));
  }
  if ("optional" in type) {
    return primitiveUnpackers.bool(reader) ? unpack(reader, type.optional) : null;
  }
  if ("enum" in type) return checkEnum(type.enum, reader.int32());
  if ("struct" in type) return unpackStruct(reader, type.struct);
  if ("union" in type) {
    const key = reader.int32();
    const arm = SCHEMA.unions[type.union].arms[String(key)];
    if (!arm) throw new XdrError(`unknown ${type.union} discriminant ${key}`);
    return unpackStruct(reader, arm);
  }
  throw new XdrError(`unknown type descriptor ${JSON.stringify(type)}`);
}

function unpack(reader, type) {
  if (typeof type === "string") return primitiveUnpackers[type](reader);
  return unpackComposite(reader, type);
}

function descriptor(type) {
  if (typeof type !== "string") return type;
  if (type in primitivePackers) return type;
  if (type in SCHEMA.unions) return { union: type };
  if (type in SCHEMA.structs) return { struct: type };
  throw new XdrError(`unknown type ${type}`);
}

/** Returns the XDR bytes of `value`; `type` is a struct or union name or a descriptor. */
export function encode(type, value) {
  const writer = new Writer();
  pack(writer, descriptor(type), value);
  return writer.result();
}

/** Returns the value encoded in `bytes`; anything malformed throws XdrError. */
export function decode(type, bytes) {
  const { value, length } = decodePrefix(type, bytes);
  if (length !== bytes.length) throw new XdrError(`${bytes.length - length} trailing bytes`);
  return value;
}

/** Decodes one value from the start of `bytes` as strictly as `decode` and returns
 * {value, length}, `length` being the bytes it took: what follows is the caller's to judge
 * (a server frame is a Message followed by nothing or by a signature). */
export function decodePrefix(type, bytes) {
  const reader = new Reader(bytes);
  try {
    return { value: unpack(reader, descriptor(type)), length: reader.position };
  } catch (error) {
    if (error instanceof XdrError) throw error;
    throw new XdrError(`malformed input: ${error.message}`);
  }
}

/** Returns the members of a schema enum, name -> number. */
export function enumMembers(name) {
  return SCHEMA.enums[name];
}

/** Returns the name of an enum's member from its number (or the number as text). */
export function enumName(name, value) {
  const entry = Object.entries(SCHEMA.enums[name] || {}).find(([, number]) => number === value);
  return entry ? entry[0] : String(value);
}

export const LIMITS = SCHEMA.limits;
