/**
 * A hostile DHCP "server" (test/helpers/hostile-dhcp.py, raw UDP in the wire namespace) against
 * ontapd's client: it answers every DISCOVER and REQUEST with a run of forged or malformed replies
 * (another xid, chaddr or client id; truncated; a bad cookie; an option or the overloaded file
 * field running past its end; no message type; yiaddr 0.0.0.0, the broadcast or the network
 * address; a router outside the subnet; a lease of 0; a domain with a newline; a good-looking
 * reply from port 6767, as a workload's own process could send), then a good one.
 * The workload must get exactly the good address, ontapd must say it dropped some (one
 * rate-limited line), and it must go on serving.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TestNamespaces, eventually, ip, sweepStaleNamespaces } from '../helpers/netns.js';
import { TestDaemon, ONTAP, ROOT } from '../helpers/ontapd.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../helpers/requirements.js';
import { installed } from '../helpers/install.js';

const HOSTILE = join(ROOT, 'test/helpers/hostile-dhcp.py');
const GOOD = '10.78.0.77';

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip') && hasCommand('python3'), 'needs iproute2 and python3'],
  [() => kernelHasKind('macvlan'), 'this kernel cannot create macvlan devices'],
]);

describeWhen('ontapd\'s DHCP client against a hostile server', reason, () => {
  const nets = new TestNamespaces();
  let daemon: TestDaemon | undefined;
  let server: ChildProcess | undefined;
  let sent = '';
  let host = '';

  before(async () => {
    sweepStaleNamespaces();
    let wire: string;
    ({ host, wire } = nets.uplink());
    ip('-n', wire, 'addr', 'add', '10.78.0.1/24', 'dev', 'peer0');
    server = spawn('ip', ['netns', 'exec', wire, 'python3', '-I', HOSTILE, 'peer0', '10.78.0.1', GOOD], { stdio: ['ignore', 'pipe', 'inherit'] });
    server.stdout!.on('data', (d: Buffer) => (sent += d.toString()));
    const t0 = Date.now();
    while (!sent.includes('ready')) {
      if (Date.now() - t0 > 10000) throw new Error('the hostile server did not start');
      await new Promise((r) => setTimeout(r, 20));
    }
    daemon = new TestDaemon(host, ['up0'], ['--family=macvlan', '--dhcp-timeout=10', '--max-leases-per-uid=2', '--mode=0666']);
    await daemon.start();
  });

  const held: ChildProcess[] = [];

  after(async () => {
    for (const c of held) c.kill('SIGKILL');
    server?.kill('SIGKILL');
    await daemon?.stop();
    nets.destroy();
  });

  test('every forged or malformed reply is dropped, the good one is taken, and ontapd goes on serving', async () => {
    const r = spawnSync('ip', ['netns', 'exec', host, process.execPath, ONTAP, '-t', 'macvlan', '--dhcp', '--netns', daemon!.socket(), '--',
      'sh', '-c', 'echo "ipv4=$ONTAP_IPV4 gw=$ONTAP_IPV4_GATEWAY domain=${ONTAP_DOMAIN-unset}"; ip -4 -o addr show dev "$ONTAP_IFNAME"'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, `${r.stderr}\n${daemon!.log.slice(-3000)}`);
    assert.match(r.stdout, new RegExp(`^ipv4=${GOOD.replace(/\./g, '\\.')}/24 gw=10\\.78\\.0\\.1 domain=unset$`, 'm'));
    assert.match(r.stdout, new RegExp(`inet ${GOOD.replace(/\./g, '\\.')}/24 `), 'only the good address is on the device');
    assert.equal(r.stdout.match(/ inet /g)?.length, 1, 'one address on the device');
    // The server sent every case at both stages (its lines are read once spawnSync lets the loop run).
    await eventually('the server\'s lines read', () => sent.includes('sent ack good\n'), 3000);
    for (const stage of ['offer', 'ack']) {
      for (const name of ['other-xid', 'other-chaddr', 'other-client-id', 'truncated', 'bad-cookie', 'length-past-end', 'overload-past-end',
        'no-message-type', 'yiaddr-zero', 'yiaddr-broadcast', 'yiaddr-network', 'router-outside', 'lease-zero', 'hostname-newline', 'from-port-6767', 'good']) {
        assert.ok(sent.includes(`sent ${stage} ${name}\n`), `the server sent the ${stage} ${name}`);
      }
    }
    // One warn line per lease per 10 s, however many were dropped.
    const dropped = daemon!.log.match(/event=dhcp-dropped /g) ?? [];
    assert.ok(dropped.length >= 1 && dropped.length <= 2, `${dropped.length} dhcp-dropped lines:\n${daemon!.log}`);
    assert.match(daemon!.log, new RegExp(`event=dhcp-bound .*address=${GOOD.replace(/\./g, '\\.')}/24`));
    // Still serving.
    const plain = spawnSync('ip', ['netns', 'exec', host, process.execPath, ONTAP, '-t', 'macvlan', '--netns', daemon!.socket(), '--', 'true'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(plain.status, 0, plain.stderr);
  });

  test('a uid other than root holds at most --max-leases-per-uid leases (the LAN\'s pool is not one uid\'s to empty); root is not held to it', async () => {
    const asNobody = (ns: string): string[] => ['ip', 'netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', installed().bin('ontap'), '-t', 'macvlan', '--dhcp', daemon!.socket(), '--'];
    for (let i = 0; i < 2; i++) {
      const ns = nets.add(`cap${i}`);
      const argv = [...asNobody(ns), 'sh', '-c', 'echo ready; exec sleep 600'];
      const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      held.push(c);
      await new Promise<void>((resolve, reject) => {
        c.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        c.on('exit', (code) => reject(new Error(`lease ${i}: ontap exited ${code}\n${daemon!.log.slice(-2000)}`)));
      });
    }
    const third = asNobody(nets.add('cap2'));
    const r = spawnSync(third[0]!, [...third.slice(1), 'true'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 77, r.stderr);
    assert.match(r.stderr, /uid 65534 holds its maximum of 2 DHCP leases \(ontapd --max-leases-per-uid\) \(field ipv4\)/);
    const root = spawnSync('ip', ['netns', 'exec', host, process.execPath, ONTAP, '-t', 'macvlan', '--dhcp', '--netns', daemon!.socket(), '--', 'true'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(root.status, 0, root.stderr);
    // One lease ends: the uid may have another.
    const first = held.shift()!;
    const gone = new Promise((res) => first.on('exit', res));
    first.kill('SIGKILL');
    await gone;
    await eventually('the lease count goes down', () => spawnSync(third[0]!, [...third.slice(1), 'true'], { timeout: 30000 }).status === 0, 5000);
  });
});
