/**
 * Reclaim with two ontapds whose uplinks are in different namespaces at the same ifindex (both
 * `up0` at 2 in fresh namespaces): a restarted ontapd deletes what it left behind and nothing of
 * the other's. One workload namespace holds a lease from each; the other ontapd also holds a lease
 * in the restarted one's own namespace. Clients run as nobody, as workloads do.
 *
 * Both host namespaces get nsids for other namespaces first, so that nsids in the two frames (and
 * the host's) differ: a comparison across frames would not pass by coincidence.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { TestNamespaces, eventually, ip, links, linksOfKind, sweepStaleNamespaces, type LinkJson } from '../helpers/netns.js';
import { TestDaemon } from '../helpers/ontapd.js';
import { installed } from '../helpers/install.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

function ifindexOf(ns: string, ifname: string): number {
  const link = links(ns).find((l) => l.ifname === ifname);
  if (!link) throw new Error(`no ${ifname} in ${ns}`);
  return link.ifindex;
}

/** A lease held by nobody in ns until killed; resolves once COMMAND runs. */
function hold(ns: string, client: string, socket: string, name: string, type = 'macvlan'): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, ...NOBODY, client, '-t', type, '-n', name, socket, '--',
    'sh', '-c', 'echo started; exec sleep 120'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`lease ${name} not started within 10 s: ${out} ${err}`)), 10000);
    child.stderr!.on('data', (s: Buffer) => (err += s.toString()));
    child.stdout!.on('data', (s: Buffer) => {
      out += s.toString();
      if (out.includes('started\n')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lease ${name}: ontap exited ${code}: ${err}`));
    });
  });
}

/** Whether ns has an nsid for peer (assigning one if not: the kernel does so itself when it needs one). */
function hasNsidFor(ns: string, peer: string): boolean {
  try {
    ip('-n', ns, 'netns', 'set', peer, 'auto');
  } catch {
    // already assigned
  }
  return (JSON.parse(ip('-n', ns, '-j', 'netns', 'list-id')) as Array<{ name?: string }>).some((e) => e.name === peer);
}

function byAlias(ns: string, alias: string, kind = 'macvlan'): LinkJson | undefined {
  return linksOfKind(ns, kind).find((l) => l.ifalias === alias);
}

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2 (apt-get install iproute2)'],
  [() => hasCommand('setpriv'), 'needs setpriv (util-linux) to run the client as nobody'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('reclaim with two ontapds whose uplinks share an ifindex', reason, () => {
  const nets = new TestNamespaces();
  let hostA = '';
  let hostB = '';
  let work = '';
  let daemonA: TestDaemon | undefined;
  let daemonB: TestDaemon | undefined;
  let client = '';
  const background: ChildProcess[] = [];

  before(async () => {
    sweepStaleNamespaces();
    let wireB: string;
    ({ host: hostA } = nets.uplink());
    ({ host: hostB, wire: wireB } = nets.uplink());
    work = nets.add('work');
    const index = ifindexOf(hostA, 'up0');
    if (ifindexOf(hostB, 'up0') !== index) {
      // Fresh namespaces number alike; should they not, give B's uplink A's ifindex.
      ip('-n', hostB, 'link', 'del', 'up0');
      ip('-n', hostB, 'link', 'add', 'up0', 'index', String(index), 'type', 'veth', 'peer', 'name', 'peer0', 'netns', wireB);
      ip('-n', hostB, 'link', 'set', 'up0', 'up');
      ip('-n', wireB, 'link', 'set', 'peer0', 'up');
    }
    assert.equal(ifindexOf(hostB, 'up0'), index, 'both uplinks at one ifindex');
    const pad1 = nets.add('pad');
    const pad2 = nets.add('pad');
    ip('-n', hostA, 'netns', 'set', pad1, 'auto');
    ip('-n', hostB, 'netns', 'set', pad1, 'auto');
    ip('-n', hostB, 'netns', 'set', pad2, 'auto');
    // uid 65534 runs ontap as installed: it may not be able to enter the checkout.
    client = installed().bin('ontap');
    // The leases are nobody's macvlans and macvtaps: ontapd's family is the administrator's.
    daemonA = new TestDaemon(hostA, ['up0'], ['--mode', '0666', '--family', 'macvlan']);
    daemonB = new TestDaemon(hostB, ['up0'], ['--mode', '0666', '--family', 'macvlan']);
    await daemonA.start();
    await daemonB.start();
  });

  after(async () => {
    for (const c of background) c.kill('SIGKILL');
    for (const d of [daemonA, daemonB]) {
      await d?.stop();
      d?.removeDir();
    }
    nets.destroy();
  });

  test('a restarted ontapd deletes its own leftovers and leaves the other ontapd\'s live devices and leases alone', async () => {
    const a = daemonA!;
    let b = daemonB!;
    // A workload with a device from each ontapd, one of A's workloads in B's own namespace, and a
    // tap of A's, which stays in A's namespace.
    background.push(await hold(work, client, a.socket(), 'from-a'));
    const leaseB = await hold(work, client, b.socket(), 'from-b');
    background.push(leaseB);
    const inB = await hold(hostB, client, a.socket(), 'a-in-b');
    background.push(inB);
    background.push(await hold(work, client, a.socket(), 'tap-a', 'macvtap'));
    const fromA = byAlias(work, 'from-a');
    const aInB = byAlias(hostB, 'a-in-b');
    const tapA = byAlias(hostA, 'tap-a', 'macvtap');
    assert.ok(fromA && byAlias(work, 'from-b') && aInB && tapA, `four devices: ${JSON.stringify([links(work), links(hostA), links(hostB)])}`);
    // B's namespace has an id for A's (the kernel gives one as soon as it reports to B's namespace
    // a link whose parent is in A's, here at the creation of a-in-b), so B's reclaim dumps A's
    // namespace too.
    assert.ok(hasNsidFor(hostB, hostA), `${hostB} has an nsid for ${hostA}`);

    // B dies without releasing: its device in `work` is ownerless now.
    await b.kill('SIGKILL');
    assert.ok(byAlias(work, 'from-b'), 'the kernel keeps a dead ontapd\'s device');
    b = daemonB = new TestDaemon(hostB, ['up0'], ['--mode', '0666', '--family', 'macvlan'], b.dir);
    await b.start();
    await eventually('B\'s leftover deleted', () => byAlias(work, 'from-b') === undefined);
    assert.match(b.log, /event=reclaimed devices=1\n/, `B reclaimed only its own device:\n${b.log}`);

    // A's devices survive, unchanged, and A still holds their leases.
    assert.equal(byAlias(work, 'from-a')?.ifindex, fromA.ifindex, `A's device in the workload namespace survives:\n${b.log}`);
    assert.equal(byAlias(hostB, 'a-in-b')?.ifindex, aInB.ifindex, `A's device in B's namespace survives:\n${b.log}`);
    assert.equal(byAlias(hostA, 'tap-a', 'macvtap')?.ifindex, tapA.ifindex, `A's tap in A's namespace survives:\n${b.log}`);
    assert.doesNotMatch(a.log, /event=release /, 'A released nothing');
    inB.kill('SIGKILL');
    await eventually('A releases its lease in B\'s namespace when it ends', () => byAlias(hostB, 'a-in-b') === undefined);
    assert.match(a.log, /event=release conn=\S+ uid=65534 /);
    leaseB.kill('SIGKILL');
  });
});
