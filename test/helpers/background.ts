/**
 * A long-running process for a test (a socket-activated ontapd, a web server, qemu, tcpdump), with
 * stdout and stderr in a file rather than a pipe: a test blocked in spawnSync would not drain a
 * pipe, and the process would stall on a full one. kill() is safe to call twice and in after().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export class Background {
  private readonly child: ChildProcess;
  private readonly exit: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(readonly argv: string[], readonly logPath: string, env?: NodeJS.ProcessEnv) {
    const fd = openSync(logPath, 'a');
    // detached: its own process group, so kill() reaches what it started (ip netns exec, sh).
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], detached: true, env: env ?? process.env });
    closeSync(fd);
    this.exit = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : null);
        resolve(this.exitCode);
      });
      this.child.on('error', () => {
        this.exitCode = 127;
        resolve(127);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get log(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  get exited(): boolean {
    return this.exitCode !== undefined;
  }

  /** Waits until the log matches, failing early if the process exits first. */
  async waitFor(pattern: RegExp, what: string, timeoutMs = 10000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.log.match(pattern);
      if (m) return m;
      if (this.exited) throw new Error(`${this.argv[0]} exited (${this.exitCode}) before ${what}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The exit status, or undefined if it is still running after timeoutMs. */
  async wait(timeoutMs: number): Promise<number | null | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
    const result = await Promise.race([this.exit, timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Signals the whole process group, then SIGKILL after graceMs; resolves with the exit status. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
    if (this.exited) return this.exitCode ?? null;
    const group = (s: NodeJS.Signals) => {
      try {
        process.kill(-this.pid, s);
      } catch {
        // already gone
      }
    };
    group(signal);
    if ((await this.wait(graceMs)) === undefined) group('SIGKILL');
    return (await this.exit) ?? null;
  }
}
