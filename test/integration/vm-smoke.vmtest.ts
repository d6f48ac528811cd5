/**
 * Proves the VM harness: runs in the guest (npm run test:vm), where the kernel has ipvlan and ipvtap.
 * One suite, parameterised by the link kind, creates a device of that kind over a veth in a fresh
 * namespace with iproute2 and checks what the kernel reports; the tap kinds also get /dev/tapIFINDEX.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { vmOnly } from './vm/guest.js';

type LinkKind = 'ipvlan' | 'ipvtap' | 'macvlan' | 'macvtap';

const NS = `ontap-smoke-${process.pid}`;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface IpLink {
  ifindex: number;
  ifname: string;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

function showLink(name: string): IpLink {
  const links = JSON.parse(ip('-n', NS, '-j', '-d', 'link', 'show', 'dev', name)) as IpLink[];
  assert.equal(links.length, 1);
  return links[0]!;
}

const MODE: Record<LinkKind, string> = { ipvlan: 'l2', ipvtap: 'l2', macvlan: 'bridge', macvtap: 'bridge' };

function linkKindSuite(kind: LinkKind): void {
  describe(`a ${kind} over a veth`, () => {
    const name = `${kind}0`;
    let ifindex = 0;

    test(`ip link add type ${kind} mode ${MODE[kind]} gives a ${kind} on the parent`, () => {
      ip('-n', NS, 'link', 'add', 'link', 'up0', 'name', name, 'type', kind, 'mode', MODE[kind]);
      ip('-n', NS, 'link', 'set', name, 'up');
      const link = showLink(name);
      ifindex = link.ifindex;
      assert.equal(link.linkinfo?.info_kind, kind);
      assert.equal(link.linkinfo?.info_data?.mode, MODE[kind]);
      assert.equal(link.link, 'up0');
    });

    if (kind === 'ipvtap' || kind === 'macvtap') {
      test(`/dev/tap<ifindex> appears for the ${kind} and goes with it`, () => {
        const dev = `/dev/tap${ifindex}`;
        assert.ok(existsSync(dev), `${dev} exists`);
        assert.ok(statSync(dev).isCharacterDevice(), `${dev} is a character device`);
        ip('-n', NS, 'link', 'del', name);
        assert.equal(existsSync(dev), false, `${dev} is removed with the link`);
      });
    } else {
      test(`deleting the ${kind} leaves the parent`, () => {
        ip('-n', NS, 'link', 'del', name);
        assert.throws(() => showLink(name));
        assert.equal(showLink('up0').ifname, 'up0');
      });
    }
  });
}

describe('the VM guest', { skip: vmOnly }, () => {
  before(() => {
    ip('netns', 'add', NS);
    ip('-n', NS, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
    ip('-n', NS, 'link', 'set', 'up0', 'up');
    ip('-n', NS, 'link', 'set', 'up1', 'up');
  });
  after(() => {
    try {
      ip('netns', 'del', NS);
    } catch {
      // never created
    }
  });

  test('ip netns add works (/run/netns bind mounts) and the namespace is usable', () => {
    assert.ok(existsSync(`/run/netns/${NS}`));
    const links = JSON.parse(ip('-n', NS, '-j', 'link', 'show')) as IpLink[];
    assert.deepEqual(links.map((l) => l.ifname).sort(), ['lo', 'up0', 'up1']);
  });

  test('/tmp and /run are writable', () => {
    for (const dir of ['/tmp', '/run']) {
      const path = `${dir}/ontap-smoke-${process.pid}`;
      writeFileSync(path, 'x');
      assert.equal(readFileSync(path, 'utf8'), 'x');
      rmSync(path);
    }
  });

  for (const kind of ['ipvlan', 'ipvtap', 'macvlan', 'macvtap'] as const) linkKindSuite(kind);
});
