/**
 * Hostile callers, issue 11 items 6 and 7: what a caller does to the links ontapd gave it.
 * Every attack runs as uid 65534 with ontap as installed, against the real ontapd in a test
 * namespace (host: up0, a veth to peer0 in "wire", the gateway).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestNamespaces, eventually, ip, links, linksOfKind, sweepStaleNamespaces } from '../../helpers/netns.js';
import { TestDaemon } from '../../helpers/ontapd.js';
import { installed } from '../../helpers/install.js';
import { Background } from '../../helpers/background.js';
import { describeWhen, hasCommand, isRoot, kernelHasKind, missing } from '../../helpers/requirements.js';

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** Runs argv with `input` on stdin; resolves with its status and output. */
function run(argv: string[], input = '', env: NodeJS.ProcessEnv = process.env, timeoutMs = 20000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: no exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

/**
 * The victim, root's workload: a macvlan (bridge mode) in its own namespace, sending a UDP datagram
 * to the gateway every millisecond: "TOKEN SEQ T" with T its CLOCK_MONOTONIC just before sendto.
 */
const SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tok, seq = sys.argv[1], 0
print('sending', flush=True)
while True:
    s.sendto(('%s %d %d' % (tok, seq, time.monotonic_ns())).encode(), (sys.argv[2], 9999))
    seq += 1
    time.sleep(0.001)
`;

/**
 * The attacker, as ontap's COMMAND on a macvtap (script on stdin): first tries the victim's MAC,
 * then takes the gateway's with SIOCSIFHWADDR on its tap descriptor, and for 1.5 s reads every
 * frame, polls the device's address (SIOCGIFHWADDR) and its lease descriptor. Prints one JSON line:
 * when the address was taken, when it was seen back, when the lease ended, and the victim's
 * datagrams it received (with the victim's send times).
 */
const TAKE_MAC = `
import errno, fcntl, json, os, select, struct, time
fd, lease = int(os.environ['ONTAP_FD0']), int(os.environ['ONTAP_LEASE_FD'])
mac = lambda s: bytes.fromhex(s.replace(':', ''))
gw, victim, tok = mac(os.environ['GW_MAC']), mac(os.environ['VICTIM_MAC']), os.environ['TOKEN'].encode()
SIOCSIFHWADDR, SIOCGIFHWADDR = 0x8924, 0x8927
def ifreq(m): return b'\\0' * 16 + struct.pack('=H', 1) + m + b'\\0' * 16
def address():
    return fcntl.ioctl(fd, SIOCGIFHWADDR, bytes(40))[18:24]
out = {}
try:
    fcntl.ioctl(fd, SIOCSIFHWADDR, ifreq(victim))
    out['victim'] = 'taken'
except OSError as e:
    out['victim'] = errno.errorcode[e.errno]
os.set_blocking(fd, False)
out['taken'] = time.monotonic_ns()
fcntl.ioctl(fd, SIOCSIFHWADDR, ifreq(gw))
out['taken_done'] = time.monotonic_ns()
stolen, restored, ended, gone = [], None, None, None
deadline = out['taken_done'] + 1500 * 10**6
while time.monotonic_ns() < deadline:
    if restored is None and gone is None:
        try:
            if address() != gw:
                restored = time.monotonic_ns()
        except OSError:
            gone = time.monotonic_ns()
    watch = [lease] if ended is None else []
    if gone is None:
        watch.append(fd)
    r, _, _ = select.select(watch, [], [], 0.0002 if restored is None else 0.01)
    now = time.monotonic_ns()
    if lease in r and os.read(lease, 64) == b'':
        ended = now
    if fd in r:
        while True:
            try:
                f = os.read(fd, 65536)[10:]
            except BlockingIOError:
                break
            except OSError:
                gone = gone or now
                break
            if not f:
                gone = gone or now
                break
            if f[0:6] == gw and f[12:14] == b'\\x08\\x00' and f[23] == 17 and f[36:38] == (9999).to_bytes(2, 'big'):
                p = f[42:].split(b' ')
                if p[0] == tok:
                    stolen.append([now, int(p[1]), int(p[2])])
out.update(restored=restored, ended=ended, gone=gone, stolen=stolen)
print(json.dumps(out), flush=True)
`;

const reason = missing([
  [isRoot, 'needs root (network namespaces)'],
  [() => hasCommand('ip'), 'needs iproute2 (apt-get install iproute2)'],
  [() => hasCommand('setpriv'), 'needs setpriv (util-linux) to run the client as nobody'],
  [() => hasCommand('python3'), 'needs python3 for the attack scripts'],
  [() => kernelHasKind('macvtap'), 'this kernel cannot create macvtap devices'],
]);

describeWhen('hostile callers: the links ontapd leases', reason, () => {
  const nets = new TestNamespaces();
  let host = '';
  let wire = '';
  const daemons: TestDaemon[] = [];
  let client = '';
  let scratch = '';
  const background: Background[] = [];

  before(async () => {
    sweepStaleNamespaces();
    ({ host, wire } = nets.uplink());
    scratch = mkdtempSync(join(tmpdir(), 'ontap-links-'));
    client = installed().bin('ontap');
  });

  /** An ontapd of its own for each test: what one test's attacker leaves (a cooldown) stays there. */
  async function startDaemon(...args: string[]): Promise<TestDaemon> {
    const d = new TestDaemon(host, ['up0'], ['--mode', '0666', ...args]);
    daemons.push(d);
    await d.start();
    return d;
  }

  after(async () => {
    for (const b of background) await b.kill();
    for (const d of daemons) {
      await d.stop();
      d.removeDir();
    }
    nets.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('6: a tap holder that takes the gateway\'s MAC gets it back at once, loses its lease, and no later frame of another workload', async (t) => {
    const d = await startDaemon();
    const gwMac = links(wire).find((l) => l.ifname === 'peer0')!.address!;
    ip('-n', wire, 'addr', 'add', '10.77.0.1/24', 'dev', 'peer0');
    const token = randomBytes(4).toString('hex');
    const victimNs = nets.add('victim');
    const victim = new Background(['ip', 'netns', 'exec', victimNs, client, '-t', 'macvlan', d.socket(), '--', 'sh', '-c',
      `ip addr add 10.77.0.2/24 dev "$ONTAP_IFNAME" && ip neigh replace 10.77.0.1 lladdr ${gwMac} dev "$ONTAP_IFNAME" nud permanent && exec python3 -c "$0" ${token} 10.77.0.1`,
      SENDER], join(scratch, 'victim.log'));
    background.push(victim);
    await victim.waitFor(/^sending$/m, 'the victim sending');
    const victimMac = linksOfKind(victimNs, 'macvlan')[0]!.address!;

    const r = await run(['ip', 'netns', 'exec', host, ...NOBODY, client, '-t', 'macvtap', d.socket(), '--', 'python3', '-'], TAKE_MAC,
      { ...process.env, GW_MAC: gwMac, VICTIM_MAC: victimMac, TOKEN: token });
    assert.ok(!victim.exited, `root's workload still runs: ${victim.log}`);
    await victim.kill();
    assert.equal(r.status, 0, `attacker: ${r.stdout}\n${r.stderr}\n${d.log}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      victim: string; taken: number; taken_done: number; restored: number | null; ended: number | null; gone: number | null; stolen: Array<[number, number, number]>;
    };
    const ms = (t: number | null) => (t === null ? null : (t - out.taken_done) / 1e6);
    const report = `taken ${(out.taken_done - out.taken) / 1e6} ms, restored after ${ms(out.restored)} ms, lease ended after ${ms(out.ended)} ms, ` +
      `device gone after ${ms(out.gone)} ms; ${out.stolen.length} datagrams taken, sent at ${out.stolen.slice(0, 10).map((s) => ms(s[2])?.toFixed(2)).join(' ')}${out.stolen.length > 10 ? ' ...' : ''} ms\n${d.log}`;
    t.diagnostic(report.split('\n')[0]!);
    // The kernel itself refuses the address of a live device on the same uplink.
    assert.equal(out.victim, 'EADDRINUSE', report);
    // Bound: ontapd reads the event and puts the address back in 0.1-1 ms here (2 ms seen while
    // the machine ran other test suites); 250 ms leaves the event loop room for a busy moment.
    assert.ok(out.restored !== null && ms(out.restored)! < 250, `the address is put back within 250 ms: ${report}`);
    assert.ok(out.ended !== null && ms(out.ended)! < 250, `the lease ends within 250 ms: ${report}`);
    // A datagram reaches the attacker only if the port looked the gateway's address up before
    // ontapd put it back, so it was sent before the attacker saw its address change back.
    for (const [, seq, sent] of out.stolen) {
      assert.ok(sent < out.restored!, `datagram ${seq} sent ${ms(sent)} ms after the address was taken, after it was put back: ${report}`);
    }
    await eventually('the tampered macvtap deleted', () => linksOfKind(host, 'macvtap').length === 0, 3000);
    assert.match(d.log, /event=link-problem conn=\d+ uid=65534 ifname=\S+ problem=address-changed leased=true address=(\S+) expected=\S+ restored=true/);
    assert.doesNotMatch(d.log, /event=link-problem conn=\d+ uid=0 [^\n]*leased=true/, 'root\'s lease was not touched');
    // One window per lease, and then one per cooldown: the same uid is refused for a while.
    const again = await run(['ip', 'netns', 'exec', host, ...NOBODY, client, '-t', 'macvtap', d.socket(), '--', 'true']);
    assert.equal(again.status, 77, `refused (limit): ${again.stdout}${again.stderr}`);
    assert.match(again.stderr, /changed the hardware address of a device it held; its requests are refused for another \d+ s/);
  });
});
