#!/usr/bin/env node
/**
 * npm start: the whole of ontap on one screen, without touching the host's network.
 *
 *   npm start              demo on a private veth uplink in throwaway namespaces
 *   npm start -- UPLINK    run ontapd on a real UPLINK (Ctrl-C stops it)
 *
 * The demo makes a "host" namespace whose uplink is one end of a veth pair and a "lan"
 * namespace at the other end with a web server, starts ontapd on the uplink, and runs
 * workloads with ontap: a named one in its own namespace that talks to the lan from its own
 * address, and a tap one that gets /dev/tapN descriptors. Everything is removed at the end.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ONTAPD = join(dist, 'ontapd/main.js');
const ONTAP = join(dist, 'ontap-client/main.js');
const node = process.execPath;

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function show(cmd: string, args: string[]): Promise<void> {
  process.stdout.write(`$ ${[cmd, ...args].join(' ')}\n`);
  const r = await execa(cmd, args, { all: true, reject: false });
  process.stdout.write(r.all ? `${r.all}\n` : '');
  if (r.exitCode !== 0) throw new Error(`${cmd} exited with ${r.exitCode}`);
}

async function kindAvailable(ns: string, kind: string): Promise<boolean> {
  const r = await execa('ip', ['-n', ns, 'link', 'add', 'link', 'up0', 'name', 'probe0', 'type', kind], { reject: false });
  if (r.exitCode !== 0) return false;
  await execa('ip', ['-n', ns, 'link', 'del', 'probe0'], { reject: false });
  return true;
}

async function demo(): Promise<void> {
  const tag = `ontap-demo-${process.pid}`;
  const host = `${tag}-host`;
  const lan = `${tag}-lan`;
  const dir = mkdtempSync(join(tmpdir(), 'ontap-demo-'));
  chmodSync(dir, 0o755);
  let daemon: ResultPromise | undefined;
  let server: ResultPromise | undefined;
  try {
    say('A throwaway "host" namespace whose uplink up0 is a veth to a "lan" namespace');
    await execa('ip', ['netns', 'add', host]);
    await execa('ip', ['netns', 'add', lan]);
    await execa('ip', ['-n', host, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', lan]);
    for (const [ns, dev] of [[host, 'up0'], [host, 'lo'], [lan, 'lan0'], [lan, 'lo']] as const) {
      await execa('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    await execa('ip', ['-n', lan, 'addr', 'add', '192.0.2.1/24', 'dev', 'lan0']);
    await show('ip', ['-n', host, '-br', 'link']);

    // A web server on the lan that tells each visitor its address.
    server = execa('ip', ['netns', 'exec', lan, node, '-e',
      `require('http').createServer((q, s) => s.end('hello ' + q.socket.remoteAddress + ', the lan sees you\\n')).listen(8080, () => console.log('ready'))`]);
    await new Promise<void>((ok) => server!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && ok()));

    say('ontapd serves up0 on a socket of its own');
    daemon = execa('ip', ['netns', 'exec', host, node, ONTAPD, '--socket-dir', dir, '--mode', '0660', '--verbosity=info', 'up0'], { stderr: 'inherit' });
    const socket = join(dir, 'port.up0');
    for (let i = 0; i < 500 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 10));
    if (!existsSync(socket)) throw new Error('ontapd did not start');

    const vlan = (await kindAvailable(host, 'ipvlan')) ? 'ipvlan' : 'macvlan';
    const tap = vlan === 'ipvlan' ? 'ipvtap' : 'macvtap';
    if (vlan === 'macvlan') process.stdout.write('(this kernel has no ipvlan: showing macvlan and macvtap)\n');

    say(`A workload named "web" gets its own ${vlan} in a new namespace and reaches the lan from its own address`);
    await show('ip', ['netns', 'exec', host, node, ONTAP, '-t', vlan, '-n', 'web', '--netns', '--uts', socket, '--',
      'sh', '-c', 'echo "hostname $(hostname), device $ONTAP_IFNAME ($ONTAP_HWADDR)"; ip addr add 192.0.2.10/24 dev "$ONTAP_IFNAME"; ip -br addr; ' +
      `${node} -e "fetch('http://192.0.2.1:8080').then(r => r.text()).then(t => process.stdout.write(t))"`]);

    say(`A VM-style workload gets a ${tap} as open /dev/tapN descriptors (qemu: -netdev tap,fd=$ONTAP_FD0)`);
    await show('ip', ['netns', 'exec', host, node, ONTAP, '-t', tap, '-m', '2', socket, '--',
      'sh', '-c', 'env | grep ^ONTAP_ | sort; ls -l /proc/$$/fd/$ONTAP_FD0 /proc/$$/fd/$ONTAP_FD1']);

    say('The workloads have exited, so their devices are gone');
    await new Promise((r) => setTimeout(r, 300));
    await show('ip', ['-n', host, '-br', 'link']);
  } finally {
    daemon?.kill('SIGTERM');
    await daemon?.catch(() => undefined);
    server?.kill('SIGKILL');
    await server?.catch(() => undefined);
    await execa('ip', ['netns', 'del', host], { reject: false });
    await execa('ip', ['netns', 'del', lan], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
  say('Done: namespaces, devices and sockets removed');
}

async function serve(uplink: string): Promise<void> {
  const daemon = execa(node, [ONTAPD, uplink], { stdio: 'inherit', reject: false });
  process.on('SIGINT', () => daemon.kill('SIGTERM'));
  const r = await daemon;
  process.exitCode = r.exitCode ?? 1;
}

if (process.getuid?.() !== 0) {
  process.stderr.write('ontap demo: needs root (it creates network namespaces); try: sudo npm start\n');
  process.exit(77);
}
const uplink = process.argv[2];
(uplink === undefined ? demo() : serve(uplink)).catch((e: unknown) => {
  process.stderr.write(`ontap demo: ${(e as Error).message}\n`);
  process.exit(70);
});
