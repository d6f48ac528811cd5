import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePrefix } from '../../src/ontap-zone/classify.js';
import { ZoneModel } from '../../src/ontap-zone/model.js';
import { publish } from '../../src/ontap-zone/publish.js';
import { locationPrefixes, octal, render, type ZoneConfig } from '../../src/ontap-zone/tinydns.js';
import { describeWhen, hasCommand, missing } from '../helpers/requirements.js';
import type { Address, Link } from '../../src/netns/types.js';

const cfg: ZoneConfig = {
  domain: 'example.test', ttl: 60, lan: [parsePrefix('10.77.0.0/16')!], nameServer: 'ns.example.test', hostmaster: 'hostmaster.example.test',
};

function link(ifindex: number, alias: string, ifname: string): Link {
  return {
    nsid: undefined, ifindex, ifname, flags: 1, mtu: 1500, address: undefined, alias, group: undefined, parentIfindex: undefined,
    linkNetnsid: undefined, kind: 'macvlan', data: undefined, numTxQueues: undefined, numRxQueues: undefined, addrGenMode: undefined,
  };
}
function addr(ifindex: number, address: string): Address {
  const family = address.includes(':') ? 6 : 4;
  return { nsid: undefined, family, ifindex, address, prefixLength: family === 4 ? 24 : 64, scope: 0, flags: 0x80, validLifetime: undefined, preferredLifetime: undefined };
}

/** web1: every class; db: lan IPv4 and wan IPv6 only (the lan fallback); two "dup" claims; one bad alias. */
function model(order: 'forward' | 'reverse' = 'forward'): ZoneModel {
  const m = new ZoneModel();
  const steps: Array<() => void> = [
    () => m.touchNamespace(4),
    () => m.touchNamespace(7),
    () => m.upsertLink(4, link(2, 'web1', 'ot1a2b1')),
    () => m.upsertLink(7, link(5, 'db', 'ot1a2b2')),
    () => m.upsertLink(7, link(6, 'dup', 'ot1a2b3')),
    () => m.upsertLink(4, link(9, 'dup', 'ot1a2b4')),
    () => m.upsertLink(4, link(10, 'Bad:Name\n+evil.example.test:1.2.3.4', 'ot1a2b5')),
    ...['203.0.113.10', '2001:db8:1::10', '10.77.1.10', 'fd00:77::10', '169.254.7.10', 'fe80::38ea:7ff:fe41:dc8'].map((a) => () => m.upsertAddress(4, addr(2, a))),
    () => m.upsertAddress(7, addr(5, '10.77.2.20')),
    () => m.upsertAddress(7, addr(5, '2001:db8:2::20')),
    () => m.upsertAddress(7, addr(6, '203.0.113.66')),
    () => m.upsertAddress(4, addr(9, '203.0.113.99')),
    () => m.upsertAddress(4, addr(10, '203.0.113.100')),
  ];
  // Namespaces first either way (records of unknown namespaces are ignored).
  const [a, b, ...rest] = steps;
  a!(); b!();
  for (const s of order === 'forward' ? rest : rest.reverse()) s();
  return m;
}

const reserved = new Set(['lan', 'wan', 'ns']);

const EXPECTED = String.raw`# ontap-zone: names of the workloads under example.test and local. Generated: every change rewrites this file.
Zexample.test:ns.example.test:hostmaster.example.test::16384:2048:1048576:60:60
&example.test::ns.example.test:3600
Zlocal:ns.example.test:hostmaster.example.test::16384:2048:1048576:60:60
&local::ns.example.test:3600
%ln:10.77
%wn
# withheld "dup" (collision: claimed in 2 namespaces: no records for dup until one claim is left) at "4/ot1a2b4" "7/ot1a2b3"
# withheld "Bad:Name\n+evil.example.test:1.2.3.4" (invalid-name: not a DNS label (1-63 of a-z, 0-9 and "-", not starting or ending with "-")) at "4/ot1a2b5"
# db: nsid 7, ot1a2b2
:db.wan.example.test:28:\040\001\015\270\000\002\000\000\000\000\000\000\000\000\000\040:60
+db.lan.example.test:10.77.2.20:60
+db.example.test:10.77.2.20:60::ln
:db.example.test:28:\040\001\015\270\000\002\000\000\000\000\000\000\000\000\000\040:60::ln
:db.example.test:28:\040\001\015\270\000\002\000\000\000\000\000\000\000\000\000\040:60::wn
# web1: nsid 4, ot1a2b1
+web1.wan.example.test:203.0.113.10:60
:web1.wan.example.test:28:\040\001\015\270\000\001\000\000\000\000\000\000\000\000\000\020:60
+web1.lan.example.test:10.77.1.10:60
:web1.lan.example.test:28:\375\000\000\167\000\000\000\000\000\000\000\000\000\000\000\020:60
+web1.example.test:10.77.1.10:60::ln
:web1.example.test:28:\375\000\000\167\000\000\000\000\000\000\000\000\000\000\000\020:60::ln
+web1.example.test:203.0.113.10:60::wn
:web1.example.test:28:\040\001\015\270\000\001\000\000\000\000\000\000\000\000\000\020:60::wn
+web1.local:169.254.7.10:60
:web1.local:28:\376\200\000\000\000\000\000\000\070\352\007\377\376\101\015\310:60
`;

describe('ontap-zone tinydns-data rendering', () => {
  test('the whole file for a fixture state', () => {
    assert.equal(render(publish(model(), { domain: cfg.domain, reserved }), cfg), EXPECTED);
  });

  test('the same state learnt in another order gives the same bytes', () => {
    assert.equal(render(publish(model('reverse'), { domain: cfg.domain, reserved }), cfg), EXPECTED);
  });

  test('without --lan, NAME.DOMAIN has the wan addresses for everyone and there are no location lines', () => {
    const text = render(publish(model(), { domain: cfg.domain, reserved }), { ...cfg, lan: [] });
    assert.doesNotMatch(text, /^%/m);
    assert.match(text, /^\+web1\.example\.test:203\.0\.113\.10:60$/m);
    assert.doesNotMatch(text, /^\+web1\.example\.test:10\./m);
  });

  test('an interface name with an escape sequence or C1 controls is quoted and escaped in the comment line', () => {
    const m = new ZoneModel();
    m.touchNamespace(3);
    // The kernel takes these bytes in a name (only "/", ":" and white space are refused): ESC [2J
    // clears a terminal that shows the file, U+009B is CSI in C1, U+202E reverses what follows.
    m.upsertLink(3, link(2, 'web', 'e\x1b[2J\u009b\u202e'));
    m.upsertLink(3, link(4, 'web', 'ok0'));
    m.upsertAddress(3, addr(2, '203.0.113.5'));
    const text = render(publish(m, { domain: cfg.domain, reserved }), { ...cfg, lan: [] });
    const comment = text.split('\n').find((l) => l.startsWith('# web:'))!;
    assert.deepEqual(Buffer.from(comment), Buffer.from('# web: nsid 3, "e\\u001b[2J\\u009b\\u202e" ok0', 'ascii'));
    assert.match(Buffer.from(text).toString('latin1'), /^[\x20-\x7e\n]*$/, 'the whole file is printable ASCII');
  });

  test('a capped workload says so in its comment line', () => {
    const m = new ZoneModel({ maxAddresses: 2 });
    m.touchNamespace(3);
    m.upsertLink(3, link(2, 'many', 'ot9'));
    for (const a of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) m.upsertAddress(3, addr(2, a));
    const text = render(publish(m, { domain: cfg.domain, reserved }), { ...cfg, lan: [] });
    assert.equal(text.split('\n').filter((l) => l.startsWith('# many:') || l.startsWith('+many.wan.')).join('\n'),
      '# many: nsid 3, ot9 (capped: the first 2 of its addresses, --max-addresses)\n+many.wan.example.test:203.0.113.1:60\n+many.wan.example.test:203.0.113.2:60');
  });

  test('AAAA data as tinydns-data octal escapes', () => {
    assert.equal(octal(Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0xff])), '\\040\\001\\015\\270\\000\\377');
  });

  test('--lan prefixes become octet-aligned location prefixes', () => {
    const lp = (s: string) => locationPrefixes(parsePrefix(s)!);
    assert.deepEqual(lp('10.0.0.0/8'), ['10']);
    assert.deepEqual(lp('10.77.0.0/16'), ['10.77']);
    assert.deepEqual(lp('172.16.0.0/12'), Array.from({ length: 16 }, (_, i) => `172.${16 + i}`));
    assert.deepEqual(lp('192.168.4.0/23'), ['192.168.4', '192.168.5']);
    assert.deepEqual(lp('10.1.2.3/32'), ['10.1.2.3']);
    assert.deepEqual(lp('0.0.0.0/0'), ['']);
    assert.equal(lp('10.1.2.0/25').length, 128);
    const everyone = render({ workloads: [], problems: [] }, { ...cfg, lan: [parsePrefix('0.0.0.0/0')!] });
    assert.match(everyone, /^%ln$/m);
    assert.doesNotMatch(everyone, /^%wn/m, 'no catch-all when the lan is everyone');
  });

  const reason = missing([[() => hasCommand('tinydns-data') && hasCommand('tinydns-get'), 'needs tinydns-data and tinydns-get (apt-get install tinydns)']]);
  describeWhen('the file compiles with stock tinydns-data 1.05 and answers per location', reason, () => {
    test('tinydns-get answers each name form as the client location asks', () => {
      const dir = mkdtempSync(join(tmpdir(), 'ontap-zone-t-'));
      try {
        writeFileSync(join(dir, 'data'), EXPECTED);
        const made = spawnSync('tinydns-data', [], { cwd: dir, encoding: 'utf8' });
        assert.equal(made.status, 0, made.stderr);
        const get = (type: string, name: string, client?: string): string[] => {
          const r = spawnSync('tinydns-get', [type, name, ...(client ? [client] : [])], { cwd: dir, encoding: 'utf8' });
          assert.equal(r.status, 0, r.stderr);
          return r.stdout.split('\n').filter((l) => l.startsWith('answer: ')).map((l) => l.slice(8)).sort();
        };
        assert.deepEqual(get('a', 'web1.example.test', '10.77.0.2'), ['web1.example.test 60 A 10.77.1.10']);
        assert.deepEqual(get('a', 'web1.example.test', '198.51.100.2'), ['web1.example.test 60 A 203.0.113.10']);
        assert.deepEqual(get('28', 'web1.example.test', '10.77.0.2'), ['web1.example.test 60 28 \\375\\000\\000w\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\020']);
        assert.deepEqual(get('a', 'web1.wan.example.test'), ['web1.wan.example.test 60 A 203.0.113.10']);
        assert.deepEqual(get('a', 'web1.lan.example.test'), ['web1.lan.example.test 60 A 10.77.1.10']);
        assert.deepEqual(get('a', 'web1.local'), ['web1.local 60 A 169.254.7.10']);
        // db has no lan IPv6: lan clients get its wan one.
        assert.equal(get('28', 'db.example.test', '10.77.0.2').length, 1);
        assert.deepEqual(get('a', 'db.example.test', '198.51.100.2'), []);
        assert.deepEqual(get('a', 'dup.example.test', '198.51.100.2'), [], 'a collision publishes nothing');
        assert.deepEqual(get('a', 'evil.example.test'), [], 'an alias cannot inject lines');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
