/**
 * A real systemd as PID 1 of its own PID, mount and cgroup namespaces, inside a test network
 * namespace: the units in systemd/ run under it with their sandboxing. Meant for the VM guest
 * (service-systemd.vmtest.ts), where a stray mount or cgroup dies with the VM; the units it sees
 * are only the ones staged here (SYSTEMD_UNIT_PATH), started with systemctl, nothing else.
 *
 * Layout, staged in /tmp/ontap-sd-PID and copied into the container's own /run/ontap-sd:
 *   units/   unit files and drop-ins      prefix/   the installed project, bound from the host's
 *   etc/     passwd, group bound over /etc's      services.log   every service's output
 * The installed project is bound under /run because the units' PrivateTmp= hides /tmp and /var/tmp
 * and ProtectHome= /root and /home, where the prefix or the checkout may be.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Background } from './background.js';
import { eventually } from './netns.js';

/** Targets and helpers the shipped units refer to (DefaultDependencies, Wants=modprobe@). */
const SYSTEM_UNITS = ['basic.target', 'sysinit.target', 'sockets.target', 'shutdown.target', 'local-fs.target', 'paths.target',
  'timers.target', 'slices.target', 'network-pre.target', 'network.target', 'multi-user.target', 'modprobe@.service'];

export const INSIDE = '/run/ontap-sd';

export class SystemdContainer {
  readonly stage: string;
  private process: Background | undefined;
  /** systemd's pid as seen from outside its PID namespace. */
  pid = -1;

  /** `prefix`: an installed project (test/helpers/install.ts), visible inside as INSIDE/prefix. */
  constructor(readonly netns: string, readonly prefix?: string) {
    this.stage = `/tmp/ontap-sd-${process.pid}`;
    rmSync(this.stage, { recursive: true, force: true });
    for (const d of ['units', 'etc']) mkdirSync(join(this.stage, d), { recursive: true, mode: 0o755 });
    for (const u of SYSTEM_UNITS) {
      if (existsSync(`/lib/systemd/system/${u}`)) copyFileSync(`/lib/systemd/system/${u}`, join(this.stage, 'units', u));
    }
    writeFileSync(join(this.stage, 'units', 'ontap-test.target'), '[Unit]\nDescription=ontap test (nothing starts by itself)\n');
    // There is no journal: every service writes to one file (systemd opens it, before any sandbox).
    mkdirSync(join(this.stage, 'units', 'service.d'));
    writeFileSync(join(this.stage, 'units', 'service.d', 'ontap-test-output.conf'),
      `[Service]\nStandardOutput=append:${INSIDE}/services.log\nStandardError=append:${INSIDE}/services.log\n`);
  }

  /** A file in the stage, at `path` relative to it (visible inside as INSIDE/path). */
  write(path: string, text: string, mode = 0o644): string {
    mkdirSync(join(this.stage, path, '..'), { recursive: true, mode: 0o755 });
    writeFileSync(join(this.stage, path), text, { mode });
    return join(INSIDE, path);
  }

  /** /etc/passwd and /etc/group as the host has them plus `passwd` and `group` lines. */
  accounts(passwd: string[], group: string[]): void {
    writeFileSync(join(this.stage, 'etc/passwd'), readFileSync('/etc/passwd', 'utf8') + passwd.map((l) => `${l}\n`).join(''));
    writeFileSync(join(this.stage, 'etc/group'), readFileSync('/etc/group', 'utf8') + group.map((l) => `${l}\n`).join(''));
  }

  async start(logPath: string): Promise<void> {
    const init = `#!/bin/sh
set -e
mount --make-rprivate /
mount -t proc proc /proc
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# StateDirectory= makes its directory in /var/lib, which is the host's, read-only, in the guest.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /var/lib
cp -a ${this.stage} ${INSIDE}
${this.prefix === undefined ? '' : `mkdir ${INSIDE}/prefix && mount --bind ${this.prefix} ${INSIDE}/prefix`}
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for f in passwd group; do [ -s ${INSIDE}/etc/$f ] && mount --bind ${INSIDE}/etc/$f /etc/$f; done
exec env -i container=ontap-test PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  SYSTEMD_UNIT_PATH=${INSIDE}/units /lib/systemd/systemd --unit=ontap-test.target \\
  --log-target=console --log-level=info
`;
    writeFileSync(join(this.stage, 'init.sh'), init, { mode: 0o755 });
    this.process = new Background(['ip', 'netns', 'exec', this.netns, 'unshare', '--fork', '--pid', '--mount', '--cgroup', '--uts', '--ipc',
      join(this.stage, 'init.sh')], logPath);
    await eventually('systemd started', () => {
      const children = this.childrenOf(this.process!.pid);
      const systemd = children.find((c) => readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'systemd');
      if (systemd !== undefined) this.pid = systemd;
      if (this.process!.exited) throw new Error(`systemd's container exited:\n${this.process!.log}`);
      return systemd !== undefined;
    }, 20000);
    await eventually('systemd running', () => /^(running|degraded)$/m.test(this.systemctl(['is-system-running']).stdout), 60000)
      .catch((e: Error) => { throw new Error(`${e.message}\n${this.output}`); });
  }

  private childrenOf(pid: number): number[] {
    try {
      return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)).filter((s) => s !== '').map(Number);
    } catch {
      return [];
    }
  }

  /** What the services wrote (to services.log), then what systemd and its container printed. */
  get output(): string {
    return `${this.services}\n--- container:\n${this.process?.log ?? ''}`;
  }

  /** The services' output. */
  get services(): string {
    try {
      return readFileSync(`/proc/${this.pid}/root${INSIDE}/services.log`, 'utf8');
    } catch {
      return '';
    }
  }

  /** A command in systemd's mount and PID namespaces (its /run, its /proc). */
  exec(argv: string[], timeoutMs = 60000): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('nsenter', ['-t', String(this.pid), '-m', '-p', '--', ...argv], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  systemctl(args: string[], timeoutMs = 60000): { status: number | null; stdout: string; stderr: string } {
    return this.exec(['systemctl', '--no-pager', ...args], timeoutMs);
  }

  /** systemctl show -p PROP UNIT, as a string. */
  show(unit: string, prop: string): string {
    return this.systemctl(['show', '-p', prop, '--value', unit]).stdout.trim();
  }

  /** /proc/PID/status of a process of the container (pid as systemd sees it). */
  status(innerPid: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of readFileSync(`/proc/${this.pid}/root/proc/${innerPid}/status`, 'utf8').split('\n')) {
      const m = /^(\w+):\s*(.*)$/.exec(line);
      if (m) out[m[1]!] = m[2]!;
    }
    return out;
  }

  /** Stops everything: SIGKILL to PID 1 of a PID namespace kills every process in it. */
  async stop(): Promise<void> {
    if (this.pid > 0) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.process?.kill('SIGKILL');
    rmSync(this.stage, { recursive: true, force: true });
  }

  /** Copies a staged tree (for files written after start: the container has its own copy). */
  sync(path: string): void {
    cpSync(join(this.stage, path), `/proc/${this.pid}/root${INSIDE}/${path}`, { recursive: true });
  }
}
