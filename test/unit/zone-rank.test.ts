import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZoneModel } from '../../src/ontap-zone/model.js';
import { PublishCache, publish, usable, type Publication } from '../../src/ontap-zone/publish.js';
import { LinkRanks, select } from '../../src/ontap-zone/rank.js';
import { classifyAddress, parseAddress } from '../../src/ontap-zone/classify.js';
import type { Address, Link } from '../../src/netns/types.js';
import { prng } from '../helpers/prng.js';

const opts = { domain: 'example.test', reserved: new Set(['lan', 'wan', 'ns']) };

function link(ifindex: number, alias: string | undefined, up = true, ifname = `ot${ifindex}`): Link {
  return {
    nsid: undefined, ifindex, ifname, flags: up ? 1 : 0, mtu: 1500, address: undefined, alias, group: undefined,
    parentIfindex: undefined, linkNetnsid: undefined, kind: 'macvlan', data: undefined, numTxQueues: undefined,
    numRxQueues: undefined, addrGenMode: undefined,
  };
}

function addr(ifindex: number, address: string, flags = 0x80, prefixLength?: number, scope = 0): Address {
  const family = address.includes(':') ? 6 : 4;
  return { nsid: undefined, family, ifindex, address, prefixLength: prefixLength ?? (family === 4 ? 24 : 64), scope, flags, validLifetime: undefined, preferredLifetime: undefined };
}

/**
 * The rules of docs/ontap-zone.8 computed from scratch, the way publish() did before it kept
 * ranks: every usable address of every up link of the workload, once, deprecated ones only where
 * their (class, family) has no preferred one, sorted, the first `max`.
 */
function reference(m: ZoneModel, max: number): Array<{ name: string; nsid: number; addresses: string[]; capped: boolean }> {
  const out: Array<{ name: string; nsid: number; addresses: string[]; capped: boolean }> = [];
  const claims = new Map<string, number>();
  for (const ns of m.namespaces.values()) {
    const names = new Set([...ns.links.values()].map((l) => l.alias).filter((a): a is string => a !== undefined && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(a) && !opts.reserved.has(a)));
    for (const n of names) claims.set(n, (claims.get(n) ?? 0) + 1);
  }
  const order = { wan: 0, lan: 1, local: 2 } as const;
  for (const ns of m.namespaces.values()) {
    const byName = new Map<string, number[]>();
    for (const l of ns.links.values()) if (l.alias !== undefined) byName.set(l.alias, [...(byName.get(l.alias) ?? []), l.ifindex]);
    for (const [name, ifindexes] of byName) {
      if (claims.get(name) !== 1) continue;
      const unique = new Map<string, { family: 4 | 6; address: string; bytes: Uint8Array; cls: 'wan' | 'lan' | 'local'; deprecated: boolean }>();
      for (const i of ifindexes) {
        if (!ns.links.get(i)!.up) continue;
        for (const a of ns.addresses.get(i)?.values() ?? []) {
          const cls = a.scope >= 254 ? 'none' : classifyAddress(a.family, a.address);
          if (cls === 'none' || !usable(a.family, a.flags)) continue;
          const deprecated = (a.flags & 0x20) !== 0;
          const key = `${a.family}/${a.address}`;
          const prev = unique.get(key);
          if (!prev || (prev.deprecated && !deprecated)) unique.set(key, { family: a.family, address: a.address, bytes: parseAddress(a.family, a.address)!, cls, deprecated });
        }
      }
      const all = [...unique.values()];
      const preferred = new Set(all.filter((a) => !a.deprecated).map((a) => `${a.cls}/${a.family}`));
      const kept = all.filter((a) => !a.deprecated || !preferred.has(`${a.cls}/${a.family}`)).sort((a, b) => {
        if (order[a.cls] !== order[b.cls]) return order[a.cls] - order[b.cls];
        if (a.family !== b.family) return a.family - b.family;
        for (let k = 0; k < a.bytes.length; k++) if (a.bytes[k] !== b.bytes[k]) return a.bytes[k]! - b.bytes[k]!;
        return 0;
      });
      out.push({ name, nsid: ns.nsid, addresses: kept.slice(0, max).map((a) => `${a.cls} ${a.address}${a.deprecated ? ' deprecated' : ''}`), capped: kept.length > max });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function view(p: Publication): Array<{ name: string; nsid: number; addresses: string[]; capped: boolean }> {
  return p.workloads.map((w) => ({ name: w.name, nsid: w.nsid, addresses: w.addresses.map((a) => `${a.cls} ${a.address}${a.deprecated ? ' deprecated' : ''}`), capped: w.capped }));
}

describe('ontap-zone ranks: what a workload publishes, kept incrementally', () => {
  test('select: the first max distinct addresses across links, preferred before deprecated per group', () => {
    const a = new LinkRanks();
    const b = new LinkRanks();
    const entry = (address: string) => {
      const family = address.includes(':') ? 6 : 4;
      return { family: family as 4 | 6, address, bytes: parseAddress(family, address)!, cls: classifyAddress(family, address) as 'wan' };
    };
    // slot 0: wan/4 preferred; slot 2: wan/6 preferred; slot 3: wan/6 deprecated.
    assert.equal(a.add(0, entry('203.0.113.2')), 0);
    assert.equal(a.add(0, entry('203.0.113.1')), 0);
    assert.equal(a.add(0, entry('203.0.113.1')), -1, 'a second holder of one address: no new entry');
    assert.equal(b.add(0, entry('203.0.113.1')), 0);
    assert.equal(b.add(0, entry('203.0.113.3')), 1);
    assert.equal(a.add(3, entry('2001:db8::9')), 0);
    let r = select([a, b], 10);
    assert.deepEqual(r.selected.map((s) => `${s.entry.address}${s.deprecated ? '-' : ''}`), ['203.0.113.1', '203.0.113.2', '203.0.113.3', '2001:db8::9-']);
    assert.equal(r.capped, false);
    r = select([a, b], 3);
    assert.equal(r.capped, true);
    assert.equal(r.selected.length, 3);
    r = select([a, b], 4);
    assert.equal(r.capped, false);
    // A preferred wan/6 address hides the deprecated one.
    b.add(2, entry('2001:db8::a'));
    r = select([a, b], 10);
    assert.deepEqual(r.selected.map((s) => s.entry.address), ['203.0.113.1', '203.0.113.2', '203.0.113.3', '2001:db8::a']);
    assert.equal(a.remove(0, entry('203.0.113.1').bytes), -1, 'one holder left');
    assert.equal(a.remove(0, entry('203.0.113.1').bytes), 0);
  });

  for (let seed = 1; seed <= 16; seed++) {
    test(`random changes (seed ${seed}): the incremental publication equals the rules computed from scratch, and every change that moved no version changed nothing`, () => {
      const rnd = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const max = 1 + (seed % 5);
      const m = new ZoneModel({ maxAddresses: max });
      const cache = new PublishCache();
      for (const nsid of [1, 2]) m.touchNamespace(nsid);
      const aliases = [undefined, 'a', 'b', 'Bad'] as const;
      // A small address space so that additions collide, deletions hit and ranks shift.
      const pool = [
        ...Array.from({ length: 6 }, (_, i) => `203.0.113.${i + 1}`), ...Array.from({ length: 6 }, (_, i) => `2001:db8::${i + 1}`),
        '10.0.0.1', '10.0.0.2', 'fd00::1', 'fd00::2', '169.254.1.1', 'fe80::1', 'fe80::2', '127.0.0.1', 'ff02::1',
      ];
      const flagsPool = [0x80, 0x80, 0x80, 0x20, 0xa0, 0x40, 0x08, 0x01];
      let last = view(publish(m, opts, cache));
      for (let step = 0; step < 1500; step++) {
        const nsid = pick([1, 2]);
        const ifindex = pick([2, 3, 4]);
        const before = m.version;
        const what = rnd();
        let did: string;
        if (what < 0.12) {
          const alias = pick(aliases);
          const up = rnd() < 0.85;
          did = `link ${nsid}/${ifindex} alias=${alias} up=${up}`;
          m.upsertLink(nsid, link(ifindex, alias, up, rnd() < 0.1 ? `r${ifindex}` : `ot${ifindex}`));
        } else if (what < 0.15) {
          did = `dellink ${nsid}/${ifindex}`;
          m.deleteLink(nsid, ifindex);
        } else if (what < 0.65) {
          const a = pick(pool);
          const flags = pick(flagsPool);
          const plen = a.includes(':') ? 64 : pick([24, 32]);
          const scope = rnd() < 0.05 ? 254 : 0;
          did = `addr ${nsid}/${ifindex} ${a}/${plen} flags=${flags} scope=${scope}`;
          m.upsertAddress(nsid, addr(ifindex, a, flags, plen, scope));
        } else if (what < 0.97) {
          const a = pick(pool);
          const plen = a.includes(':') ? 64 : pick([24, 32]);
          did = `deladdr ${nsid}/${ifindex} ${a}/${plen}`;
          m.deleteAddress(nsid, addr(ifindex, a, 0x80, plen));
        } else {
          // A dump that saw only some of it: sweep what it did not touch.
          const since = m.tick;
          for (const l of [...(m.namespaces.get(nsid)?.links.values() ?? [])]) if (rnd() < 0.7) m.upsertLink(nsid, link(l.ifindex, l.alias, l.up, l.ifname));
          for (const byKey of [...(m.namespaces.get(nsid)?.addresses.values() ?? [])]) {
            for (const a of [...byKey.values()]) if (rnd() < 0.7) m.upsertAddress(nsid, addr(a.ifindex, a.address, a.flags, a.prefixLength, a.scope));
          }
          did = `sweep ${nsid}`;
          m.sweepLinks(nsid, since);
          m.sweepAddresses(nsid, since);
        }
        const now = view(publish(m, opts, cache));
        const where = `seed ${seed} step ${step} (${did}), max ${max}`;
        assert.deepEqual(now, reference(m, max), `${where}: incremental vs from scratch`);
        assert.deepEqual(view(publish(m, opts)), now, `${where}: a fresh cache agrees`);
        if (m.version === before) assert.deepEqual(now, last, `${where}: no version moved, yet the publication changed`);
        last = now;
      }
    });
  }

  test('a change far down a long list moves no version; one near the front does', () => {
    const m = new ZoneModel({ maxAddresses: 64 });
    m.touchNamespace(1);
    m.upsertLink(1, link(2, 'flood'));
    for (let i = 0; i < 3000; i++) m.upsertAddress(1, addr(2, `2001:db8:1:${i.toString(16)}::1`, 0x80, 128));
    let v = m.version;
    m.upsertAddress(1, addr(2, '2001:db8:ffff::1', 0x80, 128));
    m.deleteAddress(1, addr(2, '2001:db8:ffff::1', 0x80, 128));
    m.deleteAddress(1, addr(2, `2001:db8:1:${(2999).toString(16)}::1`, 0x80, 128));
    assert.equal(m.version, v, 'past the cap');
    m.upsertAddress(1, addr(2, '2001:db8::1', 0x80, 128));
    assert.notEqual(m.version, v, 'before the first one');
    v = m.version;
    m.upsertAddress(1, addr(2, '2001:db8::1', 0x80 | 0x100, 128));
    assert.equal(m.version, v, 'a flag that changes nothing published');
    m.upsertAddress(1, addr(2, '2001:db8::1', 0x40, 128));
    assert.notEqual(m.version, v, 'tentative again: it goes');
    const pub = publish(m, opts);
    assert.equal(pub.workloads[0]!.addresses.length, 64);
    assert.equal(pub.workloads[0]!.addresses[0]!.address, '2001:db8:1:0::1');
  });
});
