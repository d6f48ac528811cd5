/**
 * Boots the guest once under qemu (TCG) and runs one command in it.
 *
 * The host's root is shared read-only over 9p; the guest switch_roots into it (guest-init.sh), so the
 * command sees the host's node and this checkout at the same paths. Three serial ports:
 *   ttyS0 -> <tmp>/console.log  the kernel console (printed on a timeout or a failed boot)
 *   ttyS1 -> qemu's stdout      the command's output (or an interactive terminal)
 *   ttyS2 -> <tmp>/status       "ready UPTIME", "exit STATUS" or "fail REASON"
 * qemu runs in its own process group, killed on a timeout and on SIGINT/SIGTERM/SIGHUP; the temporary
 * directory is removed whatever happens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { join } from 'node:path';
import type { HostTools } from './host.js';

export interface GuestJob {
  /** argv of the command, run with cwd in the guest. */
  argv: string[];
  cwd: string;
  /** Host directories mounted (read-only) at the same paths in the guest, over its own /tmp and /run too. */
  shares: string[];
  /** Exported in the guest before the command runs. */
  env: Record<string, string>;
  /** Loaded with modprobe in the guest before the command runs. */
  modules: string[];
  /** Seconds before qemu is killed; 0 = never. */
  timeoutSeconds: number;
  /** The command gets the host's terminal (stdin included) instead of a pipe. */
  interactive: boolean;
  /** After the command (or a failed boot), a shell on the terminal; only with interactive. */
  shell: boolean;
  /** More kernel command line (debugging: loglevel=7, initcall_debug...). */
  append: string;
  /** Copy the guest's console to stderr as it comes. */
  showConsole: boolean;
  memoryMiB: number;
  /** qemu -cpu. */
  cpuModel: string;
  cpus: number;
}

export interface GuestResult {
  /** The command's exit status, undefined if it never reported one. */
  status: number | undefined;
  /** Why there is no status: a timeout, a failure reported by the guest, qemu's own exit. */
  failure: string | undefined;
  /** Milliseconds from spawning qemu to the guest being ready to run the command. */
  bootMs: number | undefined;
  /** Guest uptime (s) when ready, as the guest saw it. */
  guestUptime: number | undefined;
  /** Milliseconds from spawning qemu to qemu's exit. */
  totalMs: number;
  /** The last lines of the console (kernel log and init's messages). */
  consoleTail: string;
  /** The guest kernel reported a soft lockup (seen under TCG: CPUs stuck in the kernel for minutes). */
  lockup: boolean;
}

/** A CPU stuck in the guest kernel for over 20 s: that guest will not finish in useful time. */
const SOFT_LOCKUP = /watchdog: BUG: soft lockup - CPU#\d+ stuck/;

/**
 * The directories to share so that every path in `paths` is visible in the guest: each one's
 * outermost directory not already covered by another (a checkout and its cwd are one share).
 * A string is the reason a path cannot be shared.
 */
export function guestShares(paths: string[]): string[] | string {
  const dirs = [...new Set(paths.map((p) => p.replace(/\/+$/, '') || '/'))].sort((a, b) => a.length - b.length);
  const out: string[] = [];
  for (const d of dirs) {
    // qemu's option syntax (a comma), the share list's (a newline) and the kernel's (white space).
    if (/[,\s]/.test(d)) return `${d}: a path with a comma or white space cannot be shared with the guest`;
    if (d === '/') continue;
    if (!out.some((o) => d === o || d.startsWith(`${o}/`))) out.push(d);
  }
  return out;
}

/** Quotes a word for sh. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The job file guest-init.sh sources in stage 2. */
export function jobScript(job: GuestJob, watchdogSeconds: number, rows: number, cols: number): string {
  const lines = [
    '# written by test/integration/vm/qemu.ts, sourced by guest-init.sh',
    `ONTAP_VM_CWD=${shQuote(job.cwd)}`,
    `ONTAP_VM_MODULES=${shQuote(job.modules.join(' '))}`,
    `ONTAP_VM_INTERACTIVE=${job.interactive ? 1 : 0}`,
    `ONTAP_VM_SHELL=${job.shell ? 1 : 0}`,
    `ONTAP_VM_WATCHDOG=${watchdogSeconds}`,
    `ONTAP_VM_ROWS=${rows}`,
    `ONTAP_VM_COLS=${cols}`,
    `ONTAP_VM_ARGV=${shQuote(job.argv.map(shQuote).join(' '))}`,
  ];
  for (const [k, v] of Object.entries(job.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
    lines.push(`export ${k}=${shQuote(v)}`);
  }
  return lines.join('\n') + '\n';
}

/** Reads what was appended to a file since the last call. */
class Tail {
  private offset = 0;
  private readonly decoder = new StringDecoder('utf8');
  constructor(private readonly path: string) {}
  read(): string {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return '';
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return '';
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      return this.decoder.write(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
}

function lastLines(text: string, n: number): string {
  const lines = text.replace(/\r/g, '').split('\n');
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n).join('\n');
}

/** Boots the guest, runs the job, resolves when qemu has exited and everything is cleaned up. */
export async function runGuest(tools: HostTools, boot: { kernel: string; initramfs: string }, job: GuestJob): Promise<GuestResult> {
  // The guest reads the job file through the 9p share before it mounts its own /tmp; its path goes
  // on the kernel command line, so no white space (and no comma, for qemu's option syntax).
  if (/[\s,]/.test(tmpdir())) throw new Error(`the temporary directory ${tmpdir()} contains white space or a comma: set TMPDIR`);
  const dir = mkdtempSync(join(tmpdir(), 'ontap-vm-'));
  try {
    return await boot1(tools, boot, job, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function boot1(tools: HostTools, boot: { kernel: string; initramfs: string }, job: GuestJob, dir: string): Promise<GuestResult> {
  const jobPath = join(dir, 'job');
  const consolePath = join(dir, 'console.log');
  const statusPath = join(dir, 'status');
  const watchdog = job.timeoutSeconds > 0 ? job.timeoutSeconds + 60 : 0;
  writeFileSync(jobPath, jobScript(job, watchdog, process.stdout.rows || 24, process.stdout.columns || 80));
  // Read by guest-init.sh's stage 1, beside the job: "TAG PATH" per line.
  writeFileSync(join(dir, 'shares'), job.shares.map((p, i) => `share${i} ${p}\n`).join(''));

  const append = [
    'console=ttyS0',
    'panic=-1', // PID 1 dying reboots at once, and -no-reboot turns that into qemu exiting
    'rdinit=/init',
    'loglevel=4',
    'tsc=reliable', // no clocksource watchdog or TSC calibration wait: the clock is qemu's anyway
    'no_timer_check',
    'cryptomgr.notests', // the crypto self-tests cost about 1 s under TCG
    // Expedited RCU grace periods: deleting a link or a namespace waits for several; under TCG a
    // normal one makes each delete take about 1 s instead of 0.25 s.
    'rcupdate.rcu_expedited=1',
    'i8042.noaux',
    'i8042.nokbd',
    'i8042.nopnp',
    `ontap_job=${jobPath}`,
    `ontap_shell=${job.shell ? 1 : 0}`,
    ...job.append.split(/\s+/).filter((w) => w !== ''),
  ];
  const out = job.interactive ? 'stdio,id=out,signal=off,mux=on' : 'stdio,id=out,signal=off';
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    '-display', 'none',
    '-accel', 'tcg',
    '-cpu', job.cpuModel,
    '-smp', String(job.cpus),
    '-m', String(job.memoryMiB),
    '-nic', 'none',
    '-kernel', boot.kernel,
    '-initrd', boot.initramfs,
    '-append', append.join(' '),
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    ...job.shares.flatMap((p, i) => ['-virtfs', `local,path=${p},mount_tag=share${i},security_model=none,readonly=on,multidevs=remap`]),
    '-chardev', `file,id=con,path=${consolePath}`,
    '-serial', 'chardev:con',
    '-chardev', out,
    '-serial', 'chardev:out',
    '-chardev', `file,id=st,path=${statusPath}`,
    '-serial', 'chardev:st',
  ];
  // Interactive: Ctrl-A x quits qemu, Ctrl-A c switches to the monitor.
  if (job.interactive) args.push('-mon', 'chardev=out,mode=readline');

  const consoleTail = new Tail(consolePath);
  const statusTail = new Tail(statusPath);
  let consoleText = '';
  let statusText = '';
  const result: GuestResult = {
    status: undefined,
    failure: undefined,
    bootMs: undefined,
    guestUptime: undefined,
    totalMs: 0,
    consoleTail: '',
    lockup: false,
  };

  const start = Date.now();
  // Interactive: qemu must stay in our (foreground) process group to read the terminal.
  const child: ChildProcess = spawn(tools.qemu, args, {
    stdio: job.interactive ? 'inherit' : ['ignore', 'pipe', 'inherit'],
    detached: !job.interactive,
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (exited || child.pid === undefined) return;
    try {
      if (job.interactive) child.kill(signal);
      else process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const cleanup = (): void => {
    kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\nvm: ${signal}: killing the guest\n`);
    const code = 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15);
    const finish = (): never => {
      cleanup();
      process.exit(code);
    };
    if (exited) finish();
    // Reap qemu before exiting, so that no process (not even a zombie) outlives the runner.
    child.once('exit', finish);
    kill('SIGKILL');
    setTimeout(finish, 3000).unref();
  };
  const signals: NodeJS.Signals[] = job.interactive ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', cleanup);

  child.stdout?.on('data', (chunk: Buffer) => process.stdout.write(chunk));

  const statusLine = (line: string): void => {
    const ready = /^ready\s+([\d.]+)/.exec(line);
    if (ready && result.bootMs === undefined) {
      result.bootMs = Date.now() - start;
      result.guestUptime = Number(ready[1]);
      if (!job.interactive) process.stderr.write(`vm: guest ready after ${(result.bootMs / 1000).toFixed(1)} s\n`);
    }
    const exit = /^exit\s+(\d+)/.exec(line);
    if (exit) result.status = Number(exit[1]);
    const fail = /^fail\s+(.*)$/.exec(line);
    if (fail) result.failure ??= `the guest failed: ${fail[1]}`;
  };
  const poll = (): void => {
    const c = consoleTail.read();
    if (c) {
      consoleText = (consoleText + c).slice(-64 * 1024);
      if (job.showConsole) process.stderr.write(c);
      if (!result.lockup && result.status === undefined && SOFT_LOCKUP.test(consoleText)) {
        // Stop now rather than at the timeout: the caller may boot again.
        result.lockup = true;
        result.failure ??= 'the guest kernel locked up (soft lockup on the console)';
        kill('SIGKILL');
      }
    }
    statusText += statusTail.read();
    const lines = statusText.split('\n');
    statusText = lines.pop() ?? '';
    for (const line of lines) statusLine(line.replace(/\r$/, ''));
  };
  const ticker = setInterval(poll, 100);

  let timer: NodeJS.Timeout | undefined;
  if (job.timeoutSeconds > 0) {
    timer = setTimeout(() => {
      result.failure = `timeout: the guest did not finish in ${job.timeoutSeconds} s (ONTAP_VM_TIMEOUT)`;
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 2000).unref();
    }, job.timeoutSeconds * 1000);
  }

  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    });
    result.totalMs = Date.now() - start;
    clearInterval(ticker);
    poll();
    // A line without its newline still counts (the guest's last write).
    if (statusText) statusLine(statusText);
    if (result.status === undefined && result.failure === undefined) {
      result.failure =
        signal !== null
          ? `qemu was killed by ${signal}`
          : code !== 0
            ? `qemu exited with status ${code}`
            : 'the guest powered off without reporting a status';
    }
    result.consoleTail = lastLines(consoleText, 40);
    return result;
  } finally {
    clearInterval(ticker);
    if (timer) clearTimeout(timer);
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', cleanup);
    cleanup();
  }
}
