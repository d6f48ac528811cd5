import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stableMac, stableSecret } from '../../src/ontapd/identity.js';
import { Logger } from '../../src/common/log.js';
import { mkdtempSync, openSync, readFileSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const key = Buffer.from('0123456789abcdef0123456789abcdef');

test('stable secret: an IPv6 address, the same for one uid and name, different across names and hosts', () => {
  const a = stableSecret(key, 1000, 'web');
  assert.match(a, /^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$/);
  assert.equal(stableSecret(key, 1000, 'web'), a);
  assert.notEqual(stableSecret(key, 1000, 'db'), a);
  assert.notEqual(stableSecret(Buffer.from('another host'), 1000, 'web'), a);
});

test('stable MAC: locally administered unicast, stable per uid and name', () => {
  const mac = stableMac(key, 1000, 'web');
  assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = parseInt(mac.slice(0, 2), 16);
  assert.equal(first & 0x02, 0x02, 'locally administered');
  assert.equal(first & 0x01, 0, 'unicast');
  assert.equal(stableMac(key, 1000, 'web'), mac);
  assert.notEqual(stableMac(key, 1000, 'db'), mac);
});

test('a name is its owner\'s: another uid gets another MAC and secret; root keeps the values names had before uids counted', () => {
  for (const [a, b] of [[0, 65534], [1000, 1001], [0, 1000], [1, 10]] as const) {
    assert.notEqual(stableSecret(key, a, 'web'), stableSecret(key, b, 'web'), `uids ${a} and ${b}`);
    assert.notEqual(stableMac(key, a, 'web'), stableMac(key, b, 'web'), `uids ${a} and ${b}`);
  }
  // What ontapd 0.1.0 gave every caller's "web" under this key (HMAC of the name alone).
  assert.equal(stableSecret(key, 0, 'web'), '3c78:586a:afce:5f20:424f:6457:ddf1:13ce');
  assert.equal(stableMac(key, 0, 'web'), '22:f1:b1:34:a3:7a');
  // The uid and the name do not run into each other: uid 1 "0web" is not uid 10 "web".
  assert.notEqual(stableSecret(key, 1, '0web'), stableSecret(key, 10, 'web'));
});

test('log lines: one per event, key=value, quoted only when needed, filtered by level', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-u-'));
  const path = join(dir, 'log');
  const fd = openSync(path, 'w');
  try {
    const log = new Logger('ontapd', 'info', fd);
    log.debug('hidden', { x: 1 });
    log.info('allocate', { ifname: 'ot1', uid: 1000, name: undefined, error: 'no such "dev"', empty: '' });
    closeSync(fd);
    assert.equal(readFileSync(path, 'utf8'), 'ontapd: level=info event=allocate ifname=ot1 uid=1000 error="no such \\"dev\\"" empty=""\n');
  } finally {
    rmSync(dir, { recursive: true });
  }
});
