import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stableMac, stableSecret } from '../../src/ontapd/identity.js';
import { Logger } from '../../src/common/log.js';
import { mkdtempSync, openSync, readFileSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const key = Buffer.from('0123456789abcdef0123456789abcdef');

test('stable secret: an IPv6 address, the same for one name, different across names and hosts', () => {
  const a = stableSecret(key, 'web');
  assert.match(a, /^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$/);
  assert.equal(stableSecret(key, 'web'), a);
  assert.notEqual(stableSecret(key, 'db'), a);
  assert.notEqual(stableSecret(Buffer.from('another host'), 'web'), a);
});

test('stable MAC: locally administered unicast, stable per name', () => {
  const mac = stableMac(key, 'web');
  assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = parseInt(mac.slice(0, 2), 16);
  assert.equal(first & 0x02, 0x02, 'locally administered');
  assert.equal(first & 0x01, 0, 'unicast');
  assert.equal(stableMac(key, 'web'), mac);
  assert.notEqual(stableMac(key, 'db'), mac);
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
