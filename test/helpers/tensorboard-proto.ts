// TensorBoard event files decoded by protobufjs, a general protocol buffer library, against
// TensorFlow's and TensorBoard's message definitions (test/fixtures/tensorboard/*.proto),
// independently of the project's encoder in lib/logging/tfrecord.ts.
import * as fs from 'fs';
import * as path from 'path';

import * as protobuf from 'protobufjs';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'tensorboard');

let root: protobuf.Root | undefined;

/** The protobufjs root with tensorflow.Event and tensorboard.hparams.HParamsPluginData. */
export function tensorboardProtos(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  // google/protobuf/*.proto are the definitions bundled with protobufjs; the rest are fixtures.
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(FIXTURES, target));
  r.loadSync(['tensorflow/core/util/event.proto', 'tensorboard/plugins/hparams/plugin_data.proto'], { keepCase: false });
  r.resolveAll();
  root = r;
  return r;
}

/** Bit-at-a-time CRC32C and the TFRecord mask, written from the format's description. */
function maskedCrc(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  const c = BigInt(~crc >>> 0);
  return Number((((c >> 15n) | ((c << 17n) & 0xffffffffn)) + 0xa282ead8n) & 0xffffffffn);
}

/** The records of a TFRecord file, both CRCs of each checked. */
export function tfrecords(file: string): Buffer[] {
  const data = fs.readFileSync(file);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; ) {
    if (i + 12 > data.length) throw new Error(`${file}: truncated header at ${i}`);
    const length = Number(data.readBigUInt64LE(i));
    if (data.readUInt32LE(i + 8) !== maskedCrc(data.subarray(i, i + 8))) throw new Error(`${file}: bad length crc at ${i}`);
    if (i + 16 + length > data.length) throw new Error(`${file}: truncated record at ${i}`);
    const body = data.subarray(i + 12, i + 12 + length);
    if (data.readUInt32LE(i + 12 + length) !== maskedCrc(body)) throw new Error(`${file}: bad data crc at ${i}`);
    out.push(Buffer.from(body));
    i += 16 + length;
  }
  return out;
}

/** A decoded tensorflow.Event as a plain object (int64 as numbers, bytes as Buffers), plus hparams contents decoded. */
export interface DecodedEvent {
  wallTime?: number;
  step?: number;
  fileVersion?: string;
  summary?: {
    value: {
      tag: string;
      simpleValue?: number;
      metadata?: { pluginData?: { pluginName: string; content: Buffer } };
      /** metadata.pluginData.content decoded as tensorboard.hparams.HParamsPluginData, for plugin 'hparams'. */
      hparams?: Record<string, unknown>;
    }[];
  };
}

/**
 * Decodes every record of an event file as tensorflow.Event. Each record must re-encode to
 * the same bytes: every byte was understood as the schema defines it (no unknown field,
 * no wrong wire type).
 */
export function decodeEventFile(file: string): DecodedEvent[] {
  const r = tensorboardProtos();
  const Event = r.lookupType('tensorflow.Event');
  const PluginData = r.lookupType('tensorboard.hparams.HParamsPluginData');
  const toObject = { longs: Number, bytes: Buffer, defaults: false, oneofs: false } as const;
  return tfrecords(file).map((bytes, k) => {
    const message = Event.decode(bytes);
    const again = Buffer.from(Event.encode(message).finish());
    if (!again.equals(bytes)) throw new Error(`${file}: record ${k} does not re-encode to the same bytes`);
    const e = Event.toObject(message, toObject) as DecodedEvent;
    for (const v of e.summary?.value ?? []) {
      const content = v.metadata?.pluginData?.content;
      if (v.metadata?.pluginData?.pluginName === 'hparams' && content) {
        const m = PluginData.decode(content);
        if (!Buffer.from(PluginData.encode(m).finish()).equals(Buffer.from(content))) throw new Error(`${file}: record ${k}: hparams content does not re-encode to the same bytes`);
        v.hparams = PluginData.toObject(m, { ...toObject, enums: String });
      }
    }
    return e;
  });
}
