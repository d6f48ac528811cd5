import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetlinkSockopt, SOL_NETLINK } from '../../src/netns/netlink/index.js';
import { RTNLGRP } from '../../src/netns/rtnl/index.js';
import { ZoneModel } from '../../src/ontap-zone/model.js';
import { RtnlWatch } from '../../src/ontap-zone/rtnl-watch.js';
import { ZoneWatcher } from '../../src/ontap-zone/watcher.js';
import { ZoneKernel, fakeLinkFlags, linkPayload, nsidPayload, settle, type NsState } from '../helpers/zone-kernel.js';
import { message } from '../fixtures/netlink/fake-kernel.js';

const quiet = { debug() {}, info() {}, warn() {} };

interface Rig {
  zk: ZoneKernel;
  model: ZoneModel;
  watch: RtnlWatch;
  watcher: ZoneWatcher;
  synced: number[];
  changes: number;
  warnings: string[];
  close(): void;
}

function rig(selfNsid?: number): Rig {
  const zk = new ZoneKernel();
  const model = new ZoneModel();
  const r = { zk, model, synced: [] as number[], changes: 0, warnings: [] as string[] } as Rig;
  const log = { ...quiet, warn: (event: string) => r.warnings.push(event) };
  r.watch = RtnlWatch.open({
    event: (e) => r.watcher.onEvent(e),
    overrun: () => r.watcher.onEvent({ type: 'overrun', nsid: undefined }),
    idle: () => {},
    error: (e) => { throw e; },
    warning: (e) => { throw e; },
  }, { binding: zk.k.binding, rcvbuf: 65536 });
  zk.fd = r.watch.fd;
  r.watcher = new ZoneWatcher(r.watch, model, log, {
    selfNsid: () => selfNsid,
    changed: () => { r.changes++; },
    synced: (p) => r.synced.push(p.number),
  });
  r.close = () => { r.watcher.stop(); r.watch.close(); };
  return r;
}

/** The kernel's state in the model's snapshot form (links with alias/up; addresses). */
function kernelView(zk: ZoneKernel, skip: number[] = []): unknown {
  return [...zk.namespaces.entries()]
    .filter(([nsid]) => !skip.includes(nsid))
    .sort(([a], [b]) => a - b)
    .map(([nsid, s]: [number, NsState]) => ({
      nsid,
      links: [...s.links.values()].sort((a, b) => a.ifindex - b.ifindex).map((l) => ({ ifindex: l.ifindex, ifname: l.ifname, alias: l.alias, up: l.up ?? true, running: (fakeLinkFlags(l) & 0x40) !== 0 })),
      addresses: [...s.addresses.values()]
        .map((a) => ({ ifindex: a.ifindex, family: a.family, address: a.address, prefixLength: a.prefixLength ?? (a.family === 4 ? 24 : 64), scope: a.scope ?? 0, flags: a.flags ?? 0x80 }))
        .sort((a, b) => a.ifindex - b.ifindex || a.address.localeCompare(b.address) || a.prefixLength - b.prefixLength),
    }));
}

function populate(zk: ZoneKernel): void {
  for (const nsid of [3, 5]) {
    zk.addNamespace(nsid, false);
    zk.setLink(nsid, { ifindex: 1, ifname: 'lo' }, false);
    zk.setLink(nsid, { ifindex: 2, ifname: `ot${nsid}`, alias: `web${nsid}` }, false);
    zk.setAddress(nsid, { ifindex: 2, family: 4, address: `10.0.${nsid}.1` }, false);
    zk.setAddress(nsid, { ifindex: 2, family: 6, address: `2001:db8:${nsid}::1` }, false);
  }
}

describe('ontap-zone watcher on one netlink socket', () => {
  test('one nonblocking socket: strict checking, LISTEN_ALL_NSID, the four groups', () => {
    const r = rig();
    const opts = r.zk.k.sockopts.filter((o) => o.fd === r.watch.fd && o.level === SOL_NETLINK);
    for (const o of [NetlinkSockopt.getStrictChk, NetlinkSockopt.extAck, NetlinkSockopt.capAck, NetlinkSockopt.listenAllNsid]) {
      assert.ok(opts.some((x) => x.name === o && x.value === 1), `option ${o}`);
    }
    assert.deepEqual(opts.filter((o) => o.name === NetlinkSockopt.addMembership).map((o) => o.value), [RTNLGRP.LINK, RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR, RTNLGRP.NSID]);
    assert.equal(r.zk.k.sockets.get(r.watch.fd)?.nonblocking, true);
    assert.equal(r.zk.k.sockets.size, 1, 'no second socket');
    r.close();
  });

  test('initial sync: the nsid list, then links and addresses of each namespace with a target nsid; not our own', async () => {
    const r = rig(9);
    populate(r.zk);
    r.zk.addNamespace(9, false); // our own namespace's self-id
    r.zk.setLink(9, { ifindex: 4, ifname: 'up0', alias: 'uplink' }, false);
    r.watcher.start();
    await settle();
    assert.deepEqual(r.synced, [1]);
    assert.deepEqual(r.zk.dumps, ['nsids', 'links 3', 'addresses 3', 'links 5', 'addresses 5']);
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk, [9]));
    r.close();
  });

  test('events apply in socket order; other namespaces\' nsid tables and our own events are ignored', async () => {
    const r = rig(9);
    populate(r.zk);
    r.watcher.start();
    await settle();
    r.zk.setLink(3, { ifindex: 2, ifname: 'ot3', alias: 'renamed' });
    r.zk.setAddress(3, { ifindex: 2, family: 6, address: '2001:db8:3::2', flags: 0x40 });
    r.zk.setAddress(3, { ifindex: 2, family: 6, address: '2001:db8:3::2', flags: 0x80 });
    r.zk.delAddress(5, { ifindex: 2, family: 4, address: '10.0.5.1' });
    r.zk.delLink(5, 2);
    // newnsid inside namespace 3 (its own table): not ours.
    r.zk.k.push(r.watch.fd, { data: message(88, 0, 1, 777, nsidPayload(42)), nsid: 3 });
    // Our own namespace's events, untagged or tagged with its self-id.
    r.zk.k.push(r.watch.fd, { data: message(16, 0, 1, 777, linkPayload({ ifindex: 7, ifname: 'x', alias: 'host' })), nsid: 9 });
    await settle();
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    assert.equal(r.model.namespaces.has(42), false);
    assert.equal(r.model.namespaces.has(9), false);
    r.close();
  });

  test('newnsid in our namespace dumps it; delnsid forgets it', async () => {
    const r = rig();
    populate(r.zk);
    r.watcher.start();
    await settle();
    r.zk.addNamespace(7, false);
    r.zk.setLink(7, { ifindex: 2, ifname: 'ot7', alias: 'late' }, false);
    r.zk.setAddress(7, { ifindex: 2, family: 4, address: '10.0.7.1' }, false);
    r.zk.addNamespace(7); // the notification
    await settle();
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    r.zk.delNamespace(3);
    await settle();
    assert.equal(r.model.namespaces.has(3), false);
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    r.close();
  });

  test('events that arrive between the batches of a dump apply in order and survive its sweep; the namespace is dumped once more', async () => {
    const r = rig();
    populate(r.zk);
    let injected = false;
    r.zk.beforeReply = (what, nsid) => {
      if (what === 'addresses' && nsid === 3 && !injected) {
        injected = true;
        r.zk.setAddress(3, { ifindex: 2, family: 4, address: '10.0.3.99' });
      }
    };
    r.watcher.start();
    await settle();
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    assert.equal(r.zk.dumps.filter((d) => d === 'addresses 3').length, 2, 'an overlapping event asks for one more dump');
    assert.equal(r.watcher.stats.redumps, 1);
    r.close();
  });

  test('NLM_F_DUMP_INTR: no sweep from an interrupted dump, retried until complete', async () => {
    const r = rig();
    populate(r.zk);
    r.watcher.start();
    await settle();
    // Silently (as if the notification were lost) remove an address, then resync with interruptions.
    r.zk.delAddress(3, { ifindex: 2, family: 4, address: '10.0.3.1' }, false);
    r.zk.interruptNext = 3;
    r.watcher.fullSync('test');
    await settle();
    assert.ok(r.watcher.stats.retries >= 3, `retries ${r.watcher.stats.retries}`);
    assert.equal(r.watch.stats.interrupted, 3);
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    r.close();
  });

  test('an overrun resyncs everything: lost namespaces, links, addresses and aliases converge', async () => {
    const r = rig();
    populate(r.zk);
    r.watcher.start();
    await settle();
    // Changes whose notifications were lost.
    r.zk.delNamespace(5, false);
    r.zk.addNamespace(6, false);
    r.zk.setLink(6, { ifindex: 3, ifname: 'ot6', alias: 'six' }, false);
    r.zk.setAddress(6, { ifindex: 3, family: 6, address: 'fd00::6' }, false);
    r.zk.setLink(3, { ifindex: 2, ifname: 'ot3', alias: 'web3b' }, false);
    r.zk.delAddress(3, { ifindex: 2, family: 6, address: '2001:db8:3::1' }, false);
    r.zk.setAddress(3, { ifindex: 2, family: 4, address: '10.0.3.2' }, false);
    r.zk.overrun();
    await settle();
    assert.deepEqual(r.synced, [1, 2]);
    assert.deepEqual(r.warnings, ['overrun']);
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    r.close();
  });

  test('an overrun during a resync pass asks for one more pass after it', async () => {
    const r = rig();
    populate(r.zk);
    r.watcher.start();
    await settle();
    let once = false;
    r.zk.beforeReply = (what) => {
      if (what === 'links' && !once) {
        once = true;
        r.zk.setAddress(5, { ifindex: 2, family: 4, address: '10.0.5.77' }, false);
        r.zk.overrun();
      }
    };
    r.zk.overrun();
    await settle(100);
    assert.deepEqual(r.synced, [1, 2, 3]);
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    r.close();
  });

  test('a namespace that vanished before its dump (EINVAL) is forgotten; an event from an unknown nsid gets it dumped', async () => {
    const r = rig();
    populate(r.zk);
    r.watcher.start();
    await settle();
    r.zk.delNamespace(5, false);
    r.watcher.dumpNamespace(5, 'test');
    await settle();
    assert.equal(r.model.namespaces.has(5), false);
    // A namespace whose newnsid we never saw.
    r.zk.addNamespace(8, false);
    r.zk.setLink(8, { ifindex: 2, ifname: 'ot8', alias: 'eight' });
    await settle();
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk));
    r.close();
  });

  test('an nsid dump the kernel cut short (6.18): ids above the last one are probed until 64 in a row are absent', async () => {
    const r = rig(150);
    for (let nsid = 0; nsid < 300; nsid++) {
      if (nsid === 150) continue; // our own self-id sits among them
      if (nsid >= 200 && nsid < 240) continue; // a gap shorter than the probe's patience
      r.zk.addNamespace(nsid, false);
      r.zk.setLink(nsid, { ifindex: 2, ifname: `ot${nsid}`, alias: `w${nsid}` }, false);
      r.zk.setAddress(nsid, { ifindex: 2, family: 4, address: `10.1.${nsid >> 8}.${nsid & 255}` }, false);
    }
    r.zk.addNamespace(150, false);
    r.zk.addNamespace(5000, false); // numbered by hand, far above: learnt from its first event
    r.zk.nsidDumpLimit = 134;
    r.watcher.start();
    await settle(400);
    assert.deepEqual(r.synced, [1]);
    assert.equal(r.watcher.stats.probes, 1);
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk, [150, 5000]));
    assert.equal(r.zk.dumps.filter((d) => d === 'links 140').length, 1, 'a probe\'s link dump is the namespace\'s link dump');
    r.zk.setLink(5000, { ifindex: 2, ifname: 'ot5000', alias: 'far' });
    await settle();
    assert.deepEqual(r.model.snapshot(), kernelView(r.zk, [150]));
    r.close();
  });
});
