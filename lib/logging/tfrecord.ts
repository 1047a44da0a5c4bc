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

// --- the hparams plugin (tensorboard/plugins/hparams: api.proto, plugin_data.proto) ---

/** A hyperparameter's value: google.protobuf.Value{number_value: 2 | string_value: 3 | bool_value: 4}. */
export type HParamValue = string | number | boolean;

function protoValue(v: HParamValue): Buffer {
  if (typeof v === 'number') return pbDouble(2, v);
  if (typeof v === 'boolean') return pbVarint(4, v ? 1 : 0);
  return pbBytes(3, v);
}

/** hparams DataType: DATA_TYPE_STRING 1, DATA_TYPE_BOOL 2, DATA_TYPE_FLOAT64 3. */
export const HPARAM_DATA_TYPE = { string: 1, boolean: 2, number: 3 } as const;
/** hparams DatasetType: DATASET_TRAINING 1, DATASET_VALIDATION 2. */
export const HPARAM_DATASET = { training: 1, validation: 2 } as const;
/** hparams Status: STATUS_SUCCESS 1, STATUS_FAILURE 2, STATUS_RUNNING 3. */
export const HPARAM_STATUS = { unknown: 0, success: 1, failure: 2, running: 3 } as const;

/** HParamInfo{name: 1, type: 4, domain_discrete: 5 ListValue{values: 1}}. */
export function hparamInfo(name: string, type: keyof typeof HPARAM_DATA_TYPE, domain?: readonly HParamValue[]): Buffer {
  const parts = [pbBytes(1, name), pbVarint(4, HPARAM_DATA_TYPE[type])];
  if (domain && domain.length) parts.push(pbBytes(5, Buffer.concat(domain.map((v) => pbBytes(1, protoValue(v))))));
  return Buffer.concat(parts);
}

/** MetricInfo{name: 1 MetricName{group: 1, tag: 2}, dataset_type: 5}. */
export function metricInfo(tag: string, group = '', dataset?: keyof typeof HPARAM_DATASET): Buffer {
  const name = Buffer.concat([...(group ? [pbBytes(1, group)] : []), pbBytes(2, tag)]);
  return Buffer.concat([pbBytes(1, name), ...(dataset ? [pbVarint(5, HPARAM_DATASET[dataset])] : [])]);
}

/** HParamsPluginData{version: 1 (0, left out), experiment: 2 Experiment{time_created_secs: 3, hparam_infos: 4, metric_infos: 5}}. */
export function experimentContent(hparamInfos: Buffer[], metricInfos: Buffer[], timeCreated: number): Buffer {
  const experiment = Buffer.concat([pbDouble(3, timeCreated), ...hparamInfos.map((h) => pbBytes(4, h)), ...metricInfos.map((m) => pbBytes(5, m))]);
  return pbBytes(2, experiment);
}

/**
 * HParamsPluginData{session_start_info: 3 SessionStartInfo{hparams: 1 map<string, Value>,
 * model_uri: 2, group_name: 4, start_time_secs: 5}}.
 */
export function sessionStartContent(hparams: Readonly<Record<string, HParamValue>>, startTime: number, modelUri = '', groupName = ''): Buffer {
  const entries = Object.entries(hparams).map(([k, v]) => pbBytes(1, Buffer.concat([pbBytes(1, k), pbBytes(2, protoValue(v))])));
  const info = Buffer.concat([...entries, ...(modelUri ? [pbBytes(2, modelUri)] : []), ...(groupName ? [pbBytes(4, groupName)] : []), pbDouble(5, startTime)]);
  return pbBytes(3, info);
}

/** HParamsPluginData{session_end_info: 4 SessionEndInfo{status: 1, end_time_secs: 2}}. */
export function sessionEndContent(status: keyof typeof HPARAM_STATUS, endTime: number): Buffer {
  return pbBytes(4, Buffer.concat([pbVarint(1, HPARAM_STATUS[status]), pbDouble(2, endTime)]));
}

/**
 * Event{wall_time: 1, summary: 5 Summary{value: 1 Value{tag: 1, metadata: 9
 * SummaryMetadata{plugin_data: 1 PluginData{plugin_name: 1, content: 2}}}}}: a plugin's
 * summary with no value, as torch.utils.tensorboard writes the hparams summaries.
 */
export function pluginEvent(wallTime: number, tag: string, pluginName: string, content: Uint8Array): Buffer {
  const metadata = pbBytes(1, Buffer.concat([pbBytes(1, pluginName), pbBytes(2, content)]));
  const value = Buffer.concat([pbBytes(1, tag), pbBytes(9, metadata)]);
  return Buffer.concat([pbDouble(1, wallTime), pbBytes(5, pbBytes(1, value))]);
}
