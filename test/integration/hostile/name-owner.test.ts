/**
 * Issue 11 item 8: a workload name is its owner's. As uid 65534: asking for root's name after
 * root's workload ended gives another MAC, link-local address and stable_secret; while another uid's lease holds a name,
 * asking for it is a conflict on `name`, for root too; a name the administrator reserved for a uid
 * (ontapd --reserve NAME=UID) is forbidden to every other.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { TestNamespaces, eventually, linksOfKind, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { installed } from '../../helpers/install.js';
import { nobodyHasPython, rawHold, rawRequest } from '../../helpers/raw-caller.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

/** What a named workload sees of its identity: MAC, RFC 7217 link-local address, stable_secret. */
interface Identity { mac: string; linkLocal: string; secret: string }

const SHOW = [
  'for i in $(seq 100); do ip -6 addr show dev "$ONTAP_IFNAME" scope link | grep -q inet6 && break; sleep 0.05; done',
  'echo "mac=$ONTAP_HWADDR"',
  'ip -6 -o addr show dev "$ONTAP_IFNAME" scope link',
  'echo "secret=$(cat /proc/sys/net/ipv6/conf/$ONTAP_IFNAME/stable_secret)"',
].join('; ');

function identityOf(argv: string[]): Identity {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  const mac = /^mac=(\S+)$/m.exec(r.stdout)?.[1];
  const linkLocal = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(r.stdout)?.[1];
  const secret = /^secret=(\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(mac && linkLocal && secret, `mac, link-local and secret in ${r.stdout}`);
  return { mac, linkLocal, secret };
}

const request = (name: string) => ({ v: 1, op: 'allocate', type: 'macvlan', name });

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('setpriv'), 'needs iproute2 and util-linux (setpriv)'],
  [nobodyHasPython, 'needs a python3 that uid 65534 can run in /usr/local/bin, /usr/bin or /bin'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('hostile: a workload name belongs to the uid that uses it', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  let rootWork = '';
  let nobodyWork = '';
  let client = '';
  let daemon: TestDaemon | undefined;
  const holders: ChildProcess[] = [];

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    rootWork = nets.add('root');
    nobodyWork = nets.add('nobody');
    client = installed().bin('ontap');
    // uid 65534's macvlans: the family is the administrator's (ontapd --family).
    daemon = new TestDaemon(host, ['up0'], ['--mode', '0666', '--family', 'macvlan']);
    await daemon.start();
  });

  after(async () => {
    for (const h of holders) h.kill('SIGKILL');
    await daemon?.stop();
    daemon?.removeDir();
    nets.destroy();
  });

  test('after root\'s "web" ended, uid 65534\'s "web" has another MAC, link-local address and stable_secret', async () => {
    const d = daemon!;
    const rootWeb = identityOf(['ip', 'netns', 'exec', rootWork, client, '-t', 'macvlan', '-n', 'web', d.socket(), '--', 'sh', '-c', SHOW]);
    await eventually('root\'s web released', () => linksOfKind(rootWork, 'macvlan').length === 0);
    // uid 65534's "web", in a namespace root made (a user namespace of its own gets no macvlan:
    // issue 11 item 7); root reads what the workload's namespace shows of its identity.
    const nobodyIdentity = async (): Promise<Identity> => {
      const held = await rawHold(nobodyWork, d.socket(), request('web'));
      try {
        assert.equal(held.reply.ok, true, JSON.stringify(held.reply));
        const device = (held.reply as unknown as { device: { ifname: string; hwaddr: string } }).device;
        let linkLocal = '';
        await eventually('uid 65534\'s web has its link-local address', () => {
          const r = spawnSync('ip', ['-n', nobodyWork, '-6', '-o', 'addr', 'show', 'dev', device.ifname, 'scope', 'link'], { encoding: 'utf8' });
          linkLocal = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(r.stdout)?.[1] ?? '';
          return linkLocal !== '';
        }, 10000);
        const secret = spawnSync('ip', ['netns', 'exec', nobodyWork, 'cat', `/proc/sys/net/ipv6/conf/${device.ifname}/stable_secret`], { encoding: 'utf8' }).stdout.trim();
        return { mac: device.hwaddr, linkLocal, secret };
      } finally {
        held.child.kill('SIGKILL');
        await eventually('uid 65534\'s web released', () => linksOfKind(nobodyWork, 'macvlan').length === 0, 10000);
      }
    };
    const nobodyWeb = await nobodyIdentity();
    assert.notEqual(nobodyWeb.mac, rootWeb.mac, 'another MAC');
    assert.notEqual(nobodyWeb.linkLocal, rootWeb.linkLocal, 'another link-local address');
    assert.notEqual(nobodyWeb.secret, rootWeb.secret, 'another stable_secret');
    assert.deepEqual(await nobodyIdentity(), nobodyWeb, 'uid 65534\'s "web" is stable: the same identity next time');
    assert.match(d.log, /event=allocate .*uid=65534 .*name=web /);
  });

  test('a name another uid\'s live lease holds is a conflict on "name", whichever uid asks', async () => {
    const d = daemon!;
    const rootHolds = await rawHold(rootWork, d.socket(), request('web'), 'root');
    holders.push(rootHolds.child);
    assert.equal(rootHolds.reply.ok, true, JSON.stringify(rootHolds.reply));
    const squat = rawRequest(nobodyWork, d.socket(), request('web'));
    assert.equal(squat.error?.code, 'conflict', JSON.stringify(squat));
    assert.equal(squat.error?.field, 'name');
    assert.match(squat.error!.message, /another user's workload/);

    const nobodyHolds = await rawHold(nobodyWork, d.socket(), request('cache'));
    holders.push(nobodyHolds.child);
    assert.equal(nobodyHolds.reply.ok, true, JSON.stringify(nobodyHolds.reply));
    const fromRoot = rawRequest(rootWork, d.socket(), request('cache'), 'root');
    assert.equal(fromRoot.error?.code, 'conflict', JSON.stringify(fromRoot));
    assert.equal(fromRoot.error?.field, 'name');

    // Once the leases end, the names are free for anyone.
    rootHolds.child.kill('SIGKILL');
    nobodyHolds.child.kill('SIGKILL');
    await eventually('both leases released', () => linksOfKind(rootWork, 'macvlan').length === 0 && linksOfKind(nobodyWork, 'macvlan').length === 0);
    assert.equal(rawRequest(nobodyWork, d.socket(), request('web')).ok, true, 'uid 65534 may use "web" now');
    assert.equal(rawRequest(rootWork, d.socket(), request('cache'), 'root').ok, true, 'root may use "cache" now');
  });

  test('--reserve NAME=UID: the name is forbidden to every other uid, root included', async () => {
    // A second uplink and ontapd, so that its start-up reclaim cannot touch up0's devices.
    nets.veth(host, 'up1', wire, 'peer1');
    const reserving = new TestDaemon(host, ['up1'], ['--mode', '0666', '--family', 'macvlan', '--reserve', 'db=0', '--reserve', 'backup=65534']);
    await reserving.start();
    try {
      const socket = reserving.socket();
      const nobodyDb = rawRequest(nobodyWork, socket, request('db'));
      assert.equal(nobodyDb.error?.code, 'forbidden', JSON.stringify(nobodyDb));
      assert.equal(nobodyDb.error?.field, 'name');
      assert.match(nobodyDb.error!.message, /reserved/);
      assert.equal(rawRequest(rootWork, socket, request('db'), 'root').ok, true, 'root may use its "db"');
      const rootBackup = rawRequest(rootWork, socket, request('backup'), 'root');
      assert.equal(rootBackup.error?.code, 'forbidden', JSON.stringify(rootBackup));
      assert.equal(rootBackup.error?.field, 'name');
      assert.equal(rawRequest(nobodyWork, socket, request('backup')).ok, true, 'uid 65534 may use its "backup"');
    } finally {
      await reserving.stop();
      reserving.removeDir();
    }
  });
});
