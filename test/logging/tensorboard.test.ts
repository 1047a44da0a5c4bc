// TensorBoard event files, read back by a reader written here from the format's
// definition: its own bitwise CRC32C, its own mask and its own protobuf decoder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { HPARAMS_TAGS, TensorBoardLogger, tensorBoardTag, writeHParamsExperiment, writeHParamsSession } from '../../lib/logging/tensorboard';
import { decodeEventFile } from '../helpers/tensorboard-proto';
import { crc32c, maskCrc, maskedCrc32c, tfrecord } from '../../lib/logging/tfrecord';

// --- the independent reader ---

/** Bit-at-a-time CRC32C (Castagnoli), no table. */
function refCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** The TFRecord mask, in BigInt arithmetic: rotate right by 15, add 0xa282ead8, mod 2^32. */
function refMask(crc: number): number {
  const c = BigInt(crc);
  const rot = (c >> 15n) | ((c << 17n) & 0xffffffffn);
  return Number((rot + 0xa282ead8n) & 0xffffffffn);
}

interface Field {
  field: number;
  wire: number;
  /** varint */ int?: bigint;
  /** fixed64/fixed32 raw bytes, or length-delimited payload */ bytes?: Buffer;
}

function decodeMessage(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const readVarint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) return v;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const f: Field = { field: key >> 3, wire: key & 7 };
    if (f.wire === 0) f.int = readVarint();
    else if (f.wire === 1) {
      f.bytes = buf.subarray(i, i + 8);
      i += 8;
    } else if (f.wire === 5) {
      f.bytes = buf.subarray(i, i + 4);
      i += 4;
    } else if (f.wire === 2) {
      const n = Number(readVarint());
      f.bytes = buf.subarray(i, i + n);
      i += n;
    } else throw new Error(`unexpected wire type ${f.wire}`);
    if (i > buf.length) throw new Error('truncated field');
    out.push(f);
  }
  return out;
}

interface DecodedEvent {
  wallTime?: number;
  step?: bigint;
  fileVersion?: string;
  scalars: { tag: string; value: number }[];
}

function decodeEvent(buf: Buffer): DecodedEvent {
  const e: DecodedEvent = { scalars: [] };
  for (const f of decodeMessage(buf)) {
    if (f.field === 1 && f.wire === 1) e.wallTime = f.bytes!.readDoubleLE(0);
    else if (f.field === 2 && f.wire === 0) e.step = f.int!;
    else if (f.field === 3 && f.wire === 2) e.fileVersion = f.bytes!.toString('utf8');
    else if (f.field === 5 && f.wire === 2) {
      for (const v of decodeMessage(f.bytes!)) {
        expect([v.field, v.wire]).toEqual([1, 2]);
        let tag: string | undefined;
        let value: number | undefined;
        for (const g of decodeMessage(v.bytes!)) {
          if (g.field === 1 && g.wire === 2) tag = g.bytes!.toString('utf8');
          else if (g.field === 2 && g.wire === 5) value = g.bytes!.readFloatLE(0);
          else throw new Error(`unexpected Summary.Value field ${g.field}/${g.wire}`);
        }
        e.scalars.push({ tag: tag!, value: value! });
      }
    } else throw new Error(`unexpected Event field ${f.field}/${f.wire}`);
  }
  return e;
}

/** Splits a TFRecord file, checking both CRCs of every record. */
function readRecords(file: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let i = 0;
  while (i < file.length) {
    if (i + 12 > file.length) throw new Error(`truncated header at ${i}`);
    const header = file.subarray(i, i + 8);
    const length = Number(header.readBigUInt64LE(0));
    const lengthCrc = file.readUInt32LE(i + 8);
    if (lengthCrc !== refMask(refCrc32c(header))) throw new Error(`bad length crc at ${i}`);
    const data = file.subarray(i + 12, i + 12 + length);
    if (i + 16 + length > file.length) throw new Error(`truncated record at ${i}`);
    const dataCrc = file.readUInt32LE(i + 12 + length);
    if (dataCrc !== refMask(refCrc32c(data))) throw new Error(`bad data crc at ${i}`);
    records.push(Buffer.from(data));
    i += 16 + length;
  }
  return records;
}

const f32 = (v: number) => Math.fround(v);

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-tb-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('CRC32C and the TFRecord mask', () => {
  test('the standard check value and the RFC 3720 vectors, for both implementations', () => {
    const vectors: [Uint8Array, number][] = [
      [Buffer.from('123456789'), 0xe3069283],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [Uint8Array.from({ length: 32 }, (_, k) => k), 0x46dd794e],
      [Uint8Array.from({ length: 32 }, (_, k) => 31 - k), 0x113fdb5c],
      [new Uint8Array(0), 0],
    ];
    for (const [bytes, expected] of vectors) {
      expect(refCrc32c(bytes)).toBe(expected);
      expect(crc32c(bytes)).toBe(expected);
    }
    expect(crc32c('123456789')).toBe(0xe3069283);
  });

  test('masked CRCs of known inputs', () => {
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8); // crc 0 masks to the delta
    expect(refMask(0)).toBe(0xa282ead8);
    expect(maskedCrc32c('123456789')).toBe(0xc78ab0e5);
    expect(refMask(0xe3069283)).toBe(0xc78ab0e5);
    expect(maskCrc(0xffffffff)).toBe(refMask(0xffffffff));
  });

  test('table CRC agrees with the bitwise one on random data; framing reads back', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (const n of [1, 3, 7, 8, 100, 1000, 4099]) {
      const data = Uint8Array.from({ length: n }, rand);
      expect(crc32c(data)).toBe(refCrc32c(data));
      const framed = tfrecord(data);
      expect(framed.length).toBe(n + 16);
      expect(readRecords(framed)).toEqual([Buffer.from(data)]);
    }
  });

  test('the reader rejects a corrupted record', () => {
    const framed = tfrecord(Buffer.from('hello event'));
    const badData = Buffer.from(framed);
    badData[14] ^= 1;
    expect(() => readRecords(badData)).toThrow(/bad data crc/);
    const badLen = Buffer.from(framed);
    badLen[9] ^= 1;
    expect(() => readRecords(badLen)).toThrow(/bad length crc/);
  });
});

describe('TensorBoardLogger', () => {
  test('writes the file_version record, then every scalar at its step', async () => {
    const before = Date.now() / 1000;
    const tb = new TensorBoardLogger(tmp);
    tb.log({ kind: 'run-start', step: 0, epoch: 0, values: {}, time: 0 });
    tb.log({ kind: 'batch', step: 1, epoch: 1, batch: 1, values: { loss: 0.6931, adv_loss_0: 0.75 }, time: 5 });
    tb.log({ kind: 'batch', step: 2, epoch: 1, batch: 2, values: { loss: 0.1 + 0.2, adv_loss_0: NaN, lr: 1e-3 }, time: 9 });
    tb.log({ kind: 'epoch', step: 2, epoch: 1, values: { 'train/loss': 0.5, 'train/adv_loss_0': 0.625, 'val/accuracy': 0.9 }, time: 12 });
    tb.log({ kind: 'batch', step: 2 ** 40 + 3, epoch: 2, batch: 1, values: { loss: -123456.789 }, time: 20 });
    tb.log({ kind: 'run-end', step: 2 ** 40 + 3, epoch: 2, values: {}, time: 21, message: 'done' });
    await tb.close();
    const after = Date.now() / 1000;

    const name = path.basename(tb.path);
    expect(path.dirname(tb.path)).toBe(tmp);
    const host = os.hostname().replace(/[\\/]/g, '_');
    const m = /^events\.out\.tfevents\.(\d+)\.(.+)\.dropattack$/.exec(name);
    expect(m).not.toBeNull();
    expect(m![2]).toBe(host);
    expect(Number(m![1])).toBeGreaterThanOrEqual(Math.floor(before));
    expect(Number(m![1])).toBeLessThanOrEqual(Math.ceil(after));

    const events = readRecords(fs.readFileSync(tb.path)).map(decodeEvent);
    expect(events[0].fileVersion).toBe('brain.Event:2');
    expect(events[0].scalars).toEqual([]);
    for (const e of events) {
      expect(e.wallTime).toBeGreaterThanOrEqual(before - 1);
      expect(e.wallTime).toBeLessThanOrEqual(after + 1);
    }
    const scalars = events.slice(1).map((e) => {
      expect(e.fileVersion).toBeUndefined();
      expect(e.scalars).toHaveLength(1);
      return [e.scalars[0].tag, e.step, e.scalars[0].value];
    });
    expect(scalars).toEqual([
      ['batch/loss', 1n, f32(0.6931)],
      ['batch/adv_loss_0', 1n, f32(0.75)],
      ['batch/loss', 2n, f32(0.1 + 0.2)],
      ['batch/adv_loss_0', 2n, NaN],
      ['batch/lr', 2n, f32(1e-3)],
      ['train/loss', 2n, 0.5],
      ['train/adv_loss_0', 2n, 0.625],
      ['val/accuracy', 2n, f32(0.9)],
      ['batch/loss', BigInt(2 ** 40 + 3), f32(-123456.789)],
    ]);
    // float32 rounding really happened (0.9 is not a float32)
    expect(scalars[7][2]).not.toBe(0.9);
  });

  test('runName puts the file in a sub-directory; two loggers get two files', async () => {
    const a = new TensorBoardLogger(tmp, { runName: 'dropattack/seed1' });
    const b = new TensorBoardLogger(tmp, { runName: 'dropattack/seed1' });
    expect(path.dirname(a.path)).toBe(path.join(tmp, 'dropattack', 'seed1'));
    expect(a.path).not.toBe(b.path);
    a.log({ kind: 'epoch', step: 7, epoch: 1, values: { 'val/loss': 0.25 }, time: 1 });
    await Promise.all([a.close(), b.close()]);
    const ea = readRecords(fs.readFileSync(a.path)).map(decodeEvent);
    expect(ea.map((e) => e.scalars)).toEqual([[], [{ tag: 'val/loss', value: 0.25 }]]);
    expect(ea[1].step).toBe(7n);
    expect(readRecords(fs.readFileSync(b.path)).map(decodeEvent)).toHaveLength(1);
  });

  test('tags', () => {
    expect(tensorBoardTag('batch', 'loss')).toBe('batch/loss');
    expect(tensorBoardTag('epoch', 'lr')).toBe('epoch/lr');
    expect(tensorBoardTag('epoch', 'val/accuracy')).toBe('val/accuracy');
    expect(tensorBoardTag('run-end', 'seconds')).toBe('run/seconds');
  });

  test('close is idempotent, logging after it is an error, bad arguments name themselves', async () => {
    const tb = new TensorBoardLogger(tmp);
    expect(() => tb.log({ kind: 'batch', step: -1, epoch: 1, values: {}, time: 0 })).toThrow(RangeError);
    expect(() => tb.log({ kind: 'batch', step: -1, epoch: 1, values: {}, time: 0 })).toThrow(/TensorBoardLogger.log: event.step must be an integer >= 0/);
    expect(() => tb.log({ kind: 'batch', step: 1.5, epoch: 1, values: {}, time: 0 })).toThrow(RangeError);
    expect(() => tb.log({ kind: 'batch', step: 1, epoch: 1, values: { loss: '1' as never }, time: 0 })).toThrow(TypeError);
    expect(() => tb.log({ kind: 'step' as never, step: 1, epoch: 1, values: {}, time: 0 })).toThrow(/event.kind must be one of/);
    await tb.close();
    await tb.close();
    expect(() => tb.log({ kind: 'batch', step: 1, epoch: 1, values: {}, time: 0 })).toThrow(/closed/);
    // nothing but the version record was written by the rejected events
    expect(readRecords(fs.readFileSync(tb.path))).toHaveLength(1);
    expect(() => new TensorBoardLogger('')).toThrow(/TensorBoardLogger: dir must be a non-empty string/);
    expect(() => new TensorBoardLogger(tmp, { runName: '../up' })).toThrow(RangeError);
    expect(() => new TensorBoardLogger(tmp, { name: 'x' } as never)).toThrow(/unknown option 'name'/);
  });
});

describe('event files decoded by protobufjs against TensorFlow\'s event.proto and summary.proto', () => {
  test('the logger\'s events: version record, then one simple_value per event value', async () => {
    const before = Date.now() / 1000;
    const tb = new TensorBoardLogger(tmp);
    tb.log({ kind: 'batch', step: 1, epoch: 1, batch: 1, values: { loss: 0.6931, adv_loss_0: 0.75 }, time: 5 });
    tb.log({ kind: 'epoch', step: 3, epoch: 1, values: { 'val/accuracy': 0.9, 'train/loss': NaN }, time: 12 });
    tb.log({ kind: 'batch', step: 2 ** 40 + 3, epoch: 2, batch: 1, values: { loss: -123456.789 }, time: 20 });
    await tb.close();
    const events = decodeEventFile(tb.path);
    expect(events[0]).toEqual({ wallTime: expect.any(Number), fileVersion: 'brain.Event:2' });
    expect(events[0].wallTime).toBeGreaterThanOrEqual(before - 1);
    expect(events.slice(1).map((e) => [e.step, e.summary!.value.map((v) => [v.tag, v.simpleValue])])).toEqual([
      [1, [['batch/loss', f32(0.6931)]]],
      [1, [['batch/adv_loss_0', 0.75]]],
      [3, [['val/accuracy', f32(0.9)]]],
      [3, [['train/loss', NaN]]],
      [2 ** 40 + 3, [['batch/loss', f32(-123456.789)]]],
    ]);
  });

  test('the hparams experiment: hyperparameters with their domains, metrics with their datasets', async () => {
    const file = await writeHParamsExperiment(tmp, {
      hparams: [
        { name: 'method', values: ['plain', 'DropAttack-1'] },
        { name: 'seed', values: [1, 2] },
        { name: 'sparse', values: [true] },
      ],
      metrics: [{ tag: 'val/accuracy', dataset: 'validation' }, { tag: 'train/loss', dataset: 'training' }, { tag: 'loss', group: 'eval' }],
      timeCreated: 1700000000.5,
    });
    const events = decodeEventFile(file);
    expect(events).toHaveLength(2);
    expect(events[0].fileVersion).toBe('brain.Event:2');
    const [value] = events[1].summary!.value;
    expect(value.tag).toBe(HPARAMS_TAGS.experiment);
    expect(value.tag).toBe('_hparams_/experiment');
    expect(value.simpleValue).toBeUndefined();
    expect(value.metadata!.pluginData!.pluginName).toBe('hparams');
    expect(value.hparams).toEqual({
      experiment: {
        timeCreatedSecs: 1700000000.5,
        hparamInfos: [
          { name: 'method', type: 'DATA_TYPE_STRING', domainDiscrete: { values: [{ stringValue: 'plain' }, { stringValue: 'DropAttack-1' }] } },
          { name: 'seed', type: 'DATA_TYPE_FLOAT64' },
          { name: 'sparse', type: 'DATA_TYPE_BOOL', domainDiscrete: { values: [{ boolValue: true }] } },
        ],
        metricInfos: [
          { name: { tag: 'val/accuracy' }, datasetType: 'DATASET_VALIDATION' },
          { name: { tag: 'train/loss' }, datasetType: 'DATASET_TRAINING' },
          { name: { group: 'eval', tag: 'loss' } },
        ],
      },
    });
  });

  test('an hparams session: start info with the values, end info with the status', async () => {
    const file = await writeHParamsSession(path.join(tmp, 'DropAttack-1'), {
      hparams: { method: 'DropAttack-1', epsilon: 0.5, sparse: false },
      startTime: 1700000000,
      endTime: 1700000100.25,
      modelUri: '/runs/x/DropAttack-1/checkpoints',
      groupName: 'DropAttack-1',
    });
    const events = decodeEventFile(file).slice(1);
    expect(events.map((e) => [e.wallTime, e.summary!.value[0].tag])).toEqual([
      [1700000000, '_hparams_/session_start_info'],
      [1700000100.25, '_hparams_/session_end_info'],
    ]);
    expect(events[0].summary!.value[0].hparams).toEqual({
      sessionStartInfo: {
        hparams: { method: { stringValue: 'DropAttack-1' }, epsilon: { numberValue: 0.5 }, sparse: { boolValue: false } },
        modelUri: '/runs/x/DropAttack-1/checkpoints',
        groupName: 'DropAttack-1',
        startTimeSecs: 1700000000,
      },
    });
    expect(events[1].summary!.value[0].hparams).toEqual({ sessionEndInfo: { status: 'STATUS_SUCCESS', endTimeSecs: 1700000100.25 } });
  });

  test('bad hparams name themselves', async () => {
    await expect(writeHParamsExperiment(tmp, { hparams: [{ name: '', values: [] }], metrics: [] })).rejects.toThrow(/hparams\[0\]\.name must be a non-empty string/);
    await expect(writeHParamsExperiment(tmp, { hparams: [{ name: 'x', values: [1, 'a'] }], metrics: [] })).rejects.toThrow(/values of one type/);
    await expect(writeHParamsSession(tmp, { hparams: { lr: NaN }, startTime: 0, endTime: 1 })).rejects.toThrow(/hparams\.lr must be a string, a boolean or a finite number/);
    await expect(writeHParamsSession(tmp, { hparams: {}, startTime: 0, endTime: Infinity })).rejects.toThrow(/endTime/);
  });
});
