/**
 * NetnsFinder against the kernel: namespaces made with `ip netns add` (held by their /run/netns
 * mounts), given nsids in the test process's namespace. One scan finds every namespace that exists
 * by then; a remembered place is checked before it is trusted, so an nsid freed and given to another
 * namespace opens that one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { NetnsFinder } from '../../src/netns/netns-by-nsid.js';
import { RouteSocket } from '../../src/netns/route-socket.js';
import { eventually, ip, sweepStaleNamespaces, TestNamespaces } from '../helpers/netns.js';
import { describeWhen, hasCommand, isRoot, missing } from '../helpers/requirements.js';

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2'],
]);

describeWhen('NetnsFinder: namespaces by nsid', reason, () => {
  const nets = new TestNamespaces();
  let rtnl: RouteSocket;
  const nsid = new Map<string, number>();

  function mapped(name: string): number {
    const fd = openSync(`/run/netns/${name}`, 'r');
    try {
      return rtnl.ensureNsid(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Whether `fd` is the namespace mounted at /run/netns/NAME. */
  function isNamespace(fd: number, name: string): boolean {
    const a = fstatSync(fd);
    const b = statSync(`/run/netns/${name}`);
    return a.dev === b.dev && a.ino === b.ino;
  }

  before(() => {
    sweepStaleNamespaces();
    rtnl = RouteSocket.open();
    for (const label of ['a', 'b', 'c']) {
      const name = nets.add(label);
      nsid.set(label, mapped(name));
    }
  });

  after(() => {
    rtnl?.close();
    nets.destroy();
  });

  test('one scan opens a, and b and c are found where that scan saw them, without another', () => {
    const finder = new NetnsFinder(rtnl);
    const names = new Map(nets.names.map((n) => [n.slice(n.lastIndexOf('-') + 1), n]));
    for (const label of ['a', 'b', 'c']) {
      const fd = finder.open(nsid.get(label)!);
      assert.ok(fd !== undefined, `nsid ${nsid.get(label)} (${label}) found`);
      try {
        assert.ok(isNamespace(fd, names.get(label)!), `the descriptor for ${label} is ${label}`);
        assert.equal(rtnl.getNsid(fd), nsid.get(label));
      } finally {
        closeSync(fd);
      }
    }
    assert.equal(finder.scans, 1);
  });

  test('an nsid nobody holds: undefined, after a scan that trusts nothing it remembered', () => {
    const finder = new NetnsFinder(rtnl);
    const used = new Set(rtnl.dumpNsids().map((n) => n.nsid));
    let free = 100000;
    while (used.has(free)) free++;
    assert.equal(finder.open(free), undefined);
    assert.equal(finder.scans, 2);
  });

  test("b deleted and its nsid given to a new namespace: the finder opens the new one, not what it remembered", async () => {
    const finder = new NetnsFinder(rtnl);
    const bName = nets.names.find((n) => n.endsWith('-b'))!;
    const old = nsid.get('b')!;
    const fd0 = finder.open(old);
    assert.ok(fd0 !== undefined);
    closeSync(fd0);
    ip('netns', 'del', bName);
    nets.names.splice(nets.names.indexOf(bName), 1);
    // The kernel frees the nsid when it cleans the namespace up, a moment later.
    await eventually(`nsid ${old} freed`, () => !rtnl.dumpNsids().some((n) => n.nsid === old), 5000);
    const fresh = nets.add('b2');
    ip('netns', 'set', fresh, String(old));
    const fd = finder.open(old);
    assert.ok(fd !== undefined, `nsid ${old} found again`);
    try {
      assert.ok(isNamespace(fd, fresh), 'the descriptor is the new namespace');
    } finally {
      closeSync(fd);
    }
  });
});
