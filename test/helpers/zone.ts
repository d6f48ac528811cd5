/**
 * ontap-zone integration helpers: the service in a test namespace (log to a file, like TestDaemon),
 * tinydns serving its compiled file inside a test namespace, dig from a chosen source address.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './ontapd.js';

export const ONTAP_ZONE = join(ROOT, 'dist/src/ontap-zone/main.js');

/** Flags for ontap-zone's node from ONTAP_TEST_ZONE_NODE_FLAGS (space-separated): "--cpu-prof --cpu-prof-dir=/tmp/prof". */
function zoneNodeFlags(): string[] {
  return (process.env.ONTAP_TEST_ZONE_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
}

export function commandPath(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** ontap-zone running in `ns`, writing DIR/data, its log in DIR/zone.log. */
export class TestZone {
  readonly dir: string;
  readonly file: string;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  readonly logPath: string;

  constructor(readonly ns: string, readonly args: string[], dir?: string) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'ontap-zone-t-'));
    // tinydns chroots here and then runs as nobody: it must be able to traverse and read.
    chmodSync(this.dir, 0o755);
    this.file = join(this.dir, 'data');
    this.logPath = join(this.dir, `zone.${Date.now()}.${Math.random().toString(36).slice(2)}.log`);
  }

  get log(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  get content(): string {
    try {
      return readFileSync(this.file, 'utf8');
    } catch {
      return '';
    }
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  /**
   * Starts and waits for the first file (event=serving). `beforeExec` runs with ontap-zone's pid
   * before ontap-zone does (a shell waits, then execs `ip netns exec`, which execs node: one pid).
   */
  async start(timeoutMs = 15000, beforeExec?: (pid: number) => void): Promise<void> {
    const logFd = openSync(this.logPath, 'a');
    const argv = ['ip', 'netns', 'exec', this.ns, process.execPath, ...zoneNodeFlags(), ONTAP_ZONE, '--output', this.file, '--verbosity=debug', ...this.args];
    const child = beforeExec === undefined
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', logFd] })
      : spawn('sh', ['-c', 'read go && exec "$@" </dev/null', 'sh', ...argv], { stdio: ['pipe', 'ignore', logFd] });
    closeSync(logFd);
    this.child = child;
    if (beforeExec !== undefined) {
      try {
        beforeExec(child.pid!);
      } finally {
        child.stdin!.end('go\n');
      }
    }
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + timeoutMs;
    while (!this.log.includes('event=serving')) {
      if (child.exitCode !== null) throw new Error(`ontap-zone exited with ${child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`ontap-zone did not start:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  async stop(): Promise<number | null> {
    const c = this.child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    const code = (await this.exited) ?? null;
    clearTimeout(timer);
    return code;
  }

  /** Milliseconds from change to file, as the service logged them (event=wrote lag_ms=...). */
  lags(): number[] {
    return [...this.log.matchAll(/event=wrote .*lag_ms=([0-9.]+)/g)].map((m) => Number(m[1]));
  }

  removeDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `ontap-zone --once` in ns with these arguments; returns the file it wrote. */
export function zoneOnce(ns: string, args: string[]): { status: number | null; content: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ontap-zone-t-'));
  try {
    const file = join(dir, 'data');
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, ONTAP_ZONE, '--once', '--output', file, ...args], { encoding: 'utf8', timeout: 60000 });
    return { status: r.status, content: existsSync(file) ? readFileSync(file, 'utf8') : '', stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** tinydns on `ip` inside `ns`, serving ROOT/data.cdb (as nobody, chrooted). */
export class TestTinydns {
  private child: ChildProcess | undefined;
  private output = '';

  constructor(readonly ns: string, readonly root: string, readonly ip: string) {}

  async start(): Promise<void> {
    const tinydns = commandPath('tinydns');
    if (!tinydns) throw new Error('tinydns is not installed');
    const child = spawn('ip', ['netns', 'exec', this.ns, 'env', `ROOT=${this.root}`, `IP=${this.ip}`, 'UID=65534', 'GID=65534', tinydns],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 5000;
    while (!this.output.includes('starting tinydns')) {
      if (child.exitCode !== null) throw new Error(`tinydns exited with ${child.exitCode}: ${this.output}`);
      if (Date.now() > deadline) throw new Error(`tinydns did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  get log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.on('exit', r));
    c.kill('SIGTERM');
    await gone;
  }
}

export interface DigAnswer {
  status: string;
  /** "A 10.0.0.1", "AAAA 2001:db8::1", sorted. */
  answers: string[];
}

/** dig without recursion from `source` in `ns` to `server`. */
export function dig(ns: string, source: string, server: string, name: string, type: 'A' | 'AAAA'): DigAnswer {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'dig', '+norec', '+time=2', '+tries=2', '+noall', '+comments', '+answer', '-b', source, `@${server}`, name, type],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? 'NONE';
  const answers = out.split('\n')
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.split(/\s+/))
    .filter((f) => f[3] === type)
    .map((f) => `${f[3]} ${f[4]}`)
    .sort();
  return { status, answers };
}
