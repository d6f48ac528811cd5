import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The checkout's root: dist/test/helpers -> ../../.. */
export const ROOT = resolve(here, '../../..');
export const ONTAPD = join(ROOT, 'dist/src/ontapd/main.js');
export const ONTAP = join(ROOT, 'dist/src/ontap-client/main.js');

/**
 * ontapd starts in 0.2-0.5 s on the host; in the VM guest (TCG) 6-7 s while the host is lightly
 * loaded, and beyond 10 s when the host's load average is 6-9 (seen).
 */
const START_TIMEOUT_MS = process.env.ONTAP_IN_VM === '1' ? 60000 : 10000;

/**
 * Flags for ontapd's node from ONTAP_TEST_ONTAPD_NODE_FLAGS (space-separated), for profiling a test's
 * ontapd: node refuses --cpu-prof in NODE_OPTIONS. E.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
function nodeFlags(): string[] {
  return (process.env.ONTAP_TEST_ONTAPD_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
}

/** An ontapd running inside a test namespace, with its socket in a private temp dir. */
export class TestDaemon {
  readonly dir: string;
  private child: ChildProcess | undefined;
  private readonly logPath: string;
  private exited: Promise<number | null> | undefined;

  /**
   * `machineId`: ontapd reads this as /etc/machine-id (a bind mount in a mount namespace of its
   * own), so it is a host of its own: its workloads get other MACs and IPv6 interface identifiers
   * than another TestDaemon's of the same name (macvlan drops multicast from a station that has one
   * of its own devices' MAC).
   */
  constructor(readonly ns: string, readonly uplinks: string[], readonly extraArgs: string[] = [], dir?: string,
    private readonly opts: { machineId?: string } = {}) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'ontap-t-'));
    // Tests also connect as an unprivileged uid: let it reach the socket (its mode still rules).
    chmodSync(this.dir, 0o755);
    this.logPath = join(this.dir, `ontapd.${Date.now()}.${Math.random().toString(36).slice(2)}.log`);
  }

  /**
   * ontapd's stderr goes to a file, not a pipe: a test blocked in spawnSync would not drain a pipe,
   * and ontapd (whose log writes are synchronous) would stall on a full one.
   */
  get log(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  socket(uplink = this.uplinks[0]!): string {
    return join(this.dir, `port.${uplink}`);
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  async start(): Promise<void> {
    const logFd = openSync(this.logPath, 'a');
    let argv = ['ip', 'netns', 'exec', this.ns, process.execPath, ...nodeFlags(), ONTAPD, '--socket-dir', this.dir, '--verbosity=debug', ...this.extraArgs, ...this.uplinks];
    if (this.opts.machineId !== undefined) {
      const idFile = join(this.dir, 'machine-id');
      writeFileSync(idFile, `${this.opts.machineId}\n`);
      // unshare and sh exec: the pid stays ontapd's.
      argv = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /etc/machine-id && shift && exec "$@"', 'sh', idFile, ...argv];
    }
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', logFd] });
    closeSync(logFd);
    this.child = child;
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    // Wait for ontapd to say it serves every uplink: a stale socket file may already exist.
    for (;;) {
      const log = this.log;
      if (this.uplinks.every((u) => log.includes(`event=serving uplink=${u} `) && existsSync(this.socket(u)))) break;
      if (child.exitCode !== null) throw new Error(`ontapd exited with ${child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) {
        // A caller whose start failed has no daemon to stop: one left running would keep the test
        // process (and a VM run) alive until its timeout.
        child.kill('SIGKILL');
        await this.exited;
        throw new Error(`ontapd did not create its sockets within ${START_TIMEOUT_MS} ms:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The descriptors ontapd holds now (/proc/PID/fd). `ip netns exec` execs node in place, so the pid is ontapd's. */
  fdCount(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return this.child?.exitCode ?? null;
    // (already exited)
    this.child.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
    const code = (await this.exited) ?? null;
    clearTimeout(timer);
    return code;
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
  }

  removeDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
