import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger, formatValue } from '../../src/common/log.js';

/** The bytes one Logger line writes for field k=value. */
function lineBytes(value: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-u-'));
  try {
    const fd = openSync(join(dir, 'log'), 'w');
    new Logger('t', 'info', fd).warn('e', { k: value });
    closeSync(fd);
    return readFileSync(join(dir, 'log'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('log: C1 controls (U+0085 NEL, U+009B CSI) are escaped, never written as their UTF-8 bytes', () => {
  // What a hostile request key looked like in ontapd's log: c2 85 and c2 9b raw.
  const bytes = lineBytes('a\u0085b\u009b31mred');
  assert.deepEqual(bytes, Buffer.from('t: level=warn event=e k="a\\u0085b\\u009b31mred"\n', 'ascii'));
  assert.equal(bytes.indexOf(Buffer.from([0xc2, 0x85])), -1);
  assert.equal(bytes.indexOf(Buffer.from([0xc2, 0x9b])), -1);
});

test('log: line and paragraph separators, bidi controls, zero-width and tag characters are escaped', () => {
  const cases: Array<[string, string]> = [
    ['x\u2028y', '"x\\u2028y"'],
    ['x\u2029y', '"x\\u2029y"'],
    ['evil\u202etxt.exe', '"evil\\u202etxt.exe"'], // RIGHT-TO-LEFT OVERRIDE
    ['\u2066a\u2069', '"\\u2066a\\u2069"'], // LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE
    ['\u200ehidden\u200f', '"\\u200ehidden\\u200f"'], // LRM, RLM
    ['zero\u200bwidth', '"zero\\u200bwidth"'],
    ['\ufeffbom', '"\\ufeffbom"'],
    ['soft\u00adhyphen', '"soft\\u00adhyphen"'],
    ['no\u00a0break', '"no\\u00a0break"'],
    ['tag\u{e0041}', '"tag\\udb40\\udc41"'], // TAG LATIN CAPITAL LETTER A: invisible text
    ['private\ue000', '"private\\ue000"'],
    ['unassigned\u{0378}', '"unassigned\\u0378"'],
    ['lone\ud800', '"lone\\ud800"'],
    ['\x1b[31mred\x1b[0m', '"\\u001b[31mred\\u001b[0m"'],
    ['del\x7f', '"del\\u007f"'],
    ['tab\there', '"tab\\there"'],
  ];
  for (const [value, want] of cases) {
    assert.equal(formatValue(value), want, JSON.stringify(value));
    const bytes = lineBytes(value);
    assert.deepEqual(bytes, Buffer.from(`t: level=warn event=e k=${want}\n`, 'ascii'), JSON.stringify(value));
  }
});

test('log: printable text stays as it is, quoted only where logfmt needs it', () => {
  assert.equal(formatValue('plain'), 'plain');
  assert.equal(formatValue('café'), 'café');
  assert.equal(formatValue('名前'), '名前');
  assert.equal(formatValue('a b'), '"a b"');
  assert.equal(formatValue('k=v'), '"k=v"');
  assert.equal(formatValue('say "hi"'), '"say \\"hi\\""');
  assert.equal(formatValue(''), '""');
  assert.deepEqual(lineBytes('café'), Buffer.from('t: level=warn event=e k=café\n', 'utf8'));
});
