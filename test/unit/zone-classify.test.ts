import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyAddress, inPrefix, parseIPv4, parseIPv6, parsePrefix } from '../../src/ontap-zone/classify.js';
import { formatIPv6 } from '../../src/netns/rtnl/inet.js';

describe('ontap-zone address classes', () => {
  const cases: Array<[4 | 6, string, string]> = [
    // wan: global, and the documentation / benchmarking / shared ranges that stand in for it
    [4, '8.8.8.8', 'wan'], [4, '203.0.113.10', 'wan'], [4, '192.0.2.1', 'wan'], [4, '198.51.100.7', 'wan'],
    [4, '198.18.0.1', 'wan'], [4, '100.64.0.1', 'wan'], [4, '172.32.0.1', 'wan'], [4, '172.15.255.255', 'wan'],
    [6, '2001:db8::1', 'wan'], [6, '2a00:1450::1', 'wan'], [6, '3fff::1', 'wan'], [6, '2002:c000:201::1', 'wan'],
    // lan: RFC 1918 and ULA
    [4, '10.0.0.1', 'lan'], [4, '10.255.255.254', 'lan'], [4, '172.16.0.1', 'lan'], [4, '172.31.255.1', 'lan'],
    [4, '192.168.1.1', 'lan'], [6, 'fd00::1', 'lan'], [6, 'fc00::1', 'lan'], [6, 'fdff:ffff::1', 'lan'],
    // local: link-local
    [4, '169.254.7.10', 'local'], [6, 'fe80::1', 'local'], [6, 'febf::1', 'local'],
    // never published
    [4, '127.0.0.1', 'none'], [4, '0.1.2.3', 'none'], [4, '224.0.0.1', 'none'], [4, '240.0.0.1', 'none'],
    [4, '255.255.255.255', 'none'], [6, '::1', 'none'], [6, '::', 'none'], [6, '::ffff:10.0.0.1', 'none'],
    [6, 'ff02::1', 'none'], [6, 'fec0::1', 'none'], [6, '100::1', 'none'],
  ];
  for (const [family, address, cls] of cases) {
    test(`${address} is ${cls}`, () => assert.equal(classifyAddress(family, address), cls));
  }

  test('scope host or nowhere never publishes, whatever the address', () => {
    assert.equal(classifyAddress(4, '203.0.113.1', 254), 'none');
    assert.equal(classifyAddress(4, '10.1.1.1', 255), 'none');
    assert.equal(classifyAddress(4, '10.1.1.1', 253), 'lan', 'scope link on an RFC 1918 address is still lan');
  });

  test('IPv6 parsing round-trips with the kernel formatter', () => {
    for (const text of ['2001:db8::1', '::', '::1', 'fe80::38ea:7ff:fe41:dc8', '2001:db8:1:2:3:4:5:6', '::ffff:10.0.0.1', 'fd00:77::10']) {
      const b = parseIPv6(text);
      assert.ok(b, text);
      assert.equal(formatIPv6(b), text);
    }
    for (const bad of ['1::2::3', '12345::', ':::', '1:2:3:4:5:6:7:8:9', 'g::1', '1.2.3.4', '']) assert.equal(parseIPv6(bad), undefined, bad);
  });

  test('IPv4 parsing is strict', () => {
    assert.deepEqual([...parseIPv4('10.77.1.10')!], [10, 77, 1, 10]);
    for (const bad of ['10.77.1', '10.77.1.256', '010.1.1.1', '1.2.3.4.5', 'a.b.c.d']) assert.equal(parseIPv4(bad), undefined, bad);
  });

  test('prefixes: host bits must be zero; membership by bits', () => {
    assert.equal(parsePrefix('10.0.0.1/8'), undefined);
    assert.equal(parsePrefix('10.0.0.0/33'), undefined);
    assert.equal(parsePrefix('10.0.0.0'), undefined);
    const p = parsePrefix('172.16.0.0/12')!;
    assert.equal(inPrefix(parseIPv4('172.31.1.1')!, p), true);
    assert.equal(inPrefix(parseIPv4('172.32.0.0')!, p), false);
    assert.equal(inPrefix(parseIPv6('fd00::1')!, p), false, 'another family never matches');
    assert.equal(parsePrefix('0.0.0.0/0')?.length, 0);
  });
});
