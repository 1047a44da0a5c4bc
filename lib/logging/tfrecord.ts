// CRC32C (Castagnoli), TFRecord framing and the few protobuf encoders a TensorBoard
// event file needs. No dependencies.

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array | string): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The masked CRC of TFRecord files: ((crc >>> 15) | (crc << 17)) + 0xa282ead8, mod 2^32. */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** masked CRC32C of `data`. */
export function maskedCrc32c(data: Uint8Array | string): number {
  return maskCrc(crc32c(data));
}

/** One TFRecord: uint64 LE length, masked CRC32C of those 8 bytes, the data, masked CRC32C of the data. */
export function tfrecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// --- protobuf (proto3 wire format) ---

/** Base-128 varint of a non-negative safe integer or a bigint in [0, 2^64). */
export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n; // two's complement for negative int64, as protobuf does
  const bytes: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    bytes.push(b);
  } while (v > 0n);
  return Buffer.from(bytes);
}

function key(field: number, wire: number): Buffer {
  return varint((field << 3) | wire);
}

/** Field of wire type 0 (int64/uint64/int32 varint). */
export function pbVarint(field: number, value: number | bigint): Buffer {
  return Buffer.concat([key(field, 0), varint(value)]);
}

/** Field of wire type 1 (double). */
export function pbDouble(field: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value, 0);
  return Buffer.concat([key(field, 1), b]);
}

/** Field of wire type 5 (float). */
export function pbFloat(field: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value, 0);
  return Buffer.concat([key(field, 5), b]);
}

/** Field of wire type 2 (string, bytes or an embedded message). */
export function pbBytes(field: number, value: Uint8Array | string): Buffer {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([key(field, 2), varint(b.length), b]);
}

// --- tensorflow.Event ---

/** Event{wall_time: 1, file_version: 3} — the first record of an event file. */
export function fileVersionEvent(wallTime: number): Buffer {
  return Buffer.concat([pbDouble(1, wallTime), pbBytes(3, 'brain.Event:2')]);
}

/** Event{wall_time: 1, step: 2, summary: 5 Summary{value: 1 Value{tag: 1, simple_value: 2}}}. */
export function scalarEvent(wallTime: number, step: number, values: ReadonlyArray<readonly [string, number]>): Buffer {
  const summary = Buffer.concat(values.map(([tag, v]) => pbBytes(1, Buffer.concat([pbBytes(1, tag), pbFloat(2, v)]))));
  return Buffer.concat([pbDouble(1, wallTime), pbVarint(2, step), pbBytes(5, summary)]);
}
