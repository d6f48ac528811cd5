/**
 * avahi-daemon as a real mDNS peer in a test namespace, with a private D-Bus.
 *
 * avahi's clients (avahi-resolve, avahi-publish) talk to the daemon over the *system* bus only, and
 * the machine's system bus must not be involved (it may not run; avahi would register there
 * machine-wide). So each peer gets its own dbus-daemon of type system, listening on a socket in the
 * peer's temp dir, and every client is given that socket in DBUS_SYSTEM_BUS_ADDRESS.
 *
 * avahi's runtime dir (/run/avahi-daemon: pid file, the nss-mdns socket) is compiled in, and a
 * second avahi refuses to start when the pid file names a live process. So avahi runs in a mount
 * namespace of its own (`unshare -m`, private propagation: nothing it mounts reaches the host) with
 * a tmpfs over /run; mounting over /run/avahi-daemon alone would need that directory on the host's
 * /run. In the same mount namespace the machine's /etc/avahi/services and /etc/avahi/hosts are
 * covered by empty ones, so a peer publishes only what its test asks for.
 *
 * avahi-resolve and avahi-publish only speak D-Bus: they run in the test's own namespace, no
 * `ip netns exec` needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Background } from './background.js';
import { hasCommand } from './requirements.js';

export interface AvahiPeerOptions {
  /** The network namespace avahi-daemon runs in. */
  netns: string;
  /** Interfaces in netns avahi may use (allow-interfaces). */
  interfaces: string[];
  /** host-name= (without .local); avahi renames it (NAME-2, ...) on a conflict. */
  hostName: string;
}

/** A name avahi-publish holds until stop(). */
export interface PublishedAddress {
  /** The name avahi established it under. */
  readonly name: string;
  stop(): Promise<void>;
}

/** The first of avahi-daemon, avahi-resolve, avahi-publish, dbus-daemon, unshare missing here. */
export function avahiMissing(): string | undefined {
  for (const cmd of ['avahi-daemon', 'avahi-resolve', 'avahi-publish', 'dbus-daemon', 'unshare', 'setpriv']) {
    if (!hasCommand(cmd)) return `needs ${cmd} (apt-get install avahi-daemon avahi-utils dbus util-linux)`;
  }
  return undefined;
}

/**
 * Prefixed to every long-running command: if this test process dies without running its after()
 * hooks, the kernel kills what it started (setpriv, ip netns exec, unshare and sh all exec, so the
 * death signal reaches avahi-daemon itself).
 */
const DIE_WITH_PARENT = ['setpriv', '--pdeathsig', 'KILL'];

function busConfig(socket: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`;
}

function avahiConfig(o: AvahiPeerOptions): string {
  return [
    '[server]',
    `host-name=${o.hostName}`,
    `allow-interfaces=${o.interfaces.join(',')}`,
    'use-ipv4=yes',
    'use-ipv6=yes',
    'enable-dbus=yes',
    // Other responders (the one under test) share port 5353 in the same namespace.
    'disallow-other-stacks=no',
    // No cache-entries-max=0 for "always ask the wire": avahi's resolvers see responses only through
    // the cache, so with 0 nothing resolves at all (seen: answers on the wire, resolve times out).
    '[wide-area]',
    'enable-wide-area=no',
    '[publish]',
    'publish-hinfo=no',
    'publish-workstation=no',
    // Each family's address records on its own family's multicast group only (avahi's default puts
    // AAAA on IPv4 too): a -6 resolve then proves IPv6 multicast works.
    'publish-aaaa-on-ipv4=no',
    'publish-a-on-ipv6=no',
    '[reflector]',
    'enable-reflector=no',
    '',
  ].join('\n');
}

const DIR_PREFIX = 'ontap-avahi-';

/**
 * Removes temp dirs of peers whose test process died without stop() (its processes died with it:
 * DIE_WITH_PARENT). The dir names carry the pid.
 */
function sweepStaleDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = name.startsWith(DIR_PREFIX) ? /^ontap-avahi-(\d+)-/.exec(name) : null;
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

export class AvahiPeer {
  readonly dir: string;
  private bus: Background | undefined;
  private daemon: Background | undefined;
  private readonly publishers = new Set<Background>();
  private readonly clients = new Set<ChildProcess>();
  private publishCount = 0;

  constructor(readonly options: AvahiPeerOptions) {
    sweepStaleDirs();
    this.dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-${options.hostName}-`));
  }

  get busAddress(): string {
    return `unix:path=${join(this.dir, 'bus.sock')}`;
  }

  private get clientEnv(): NodeJS.ProcessEnv {
    return { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: this.busAddress };
  }

  /** avahi-daemon's log (stdout and stderr). */
  get log(): string {
    return this.daemon?.log ?? '';
  }

  /** Starts dbus-daemon and avahi-daemon; resolves once avahi says "Server startup complete". */
  async start(timeoutMs = 10000): Promise<void> {
    const { netns } = this.options;
    const busConf = join(this.dir, 'bus.conf');
    writeFileSync(busConf, busConfig(join(this.dir, 'bus.sock')));
    this.bus = new Background(
      [...DIE_WITH_PARENT, 'ip', 'netns', 'exec', netns, 'dbus-daemon', `--config-file=${busConf}`, '--nofork', '--nopidfile', '--print-address'],
      join(this.dir, 'dbus.log'),
    );
    await this.bus.waitFor(/^unix:path=/m, 'dbus-daemon listening', timeoutMs);

    const conf = join(this.dir, 'avahi-daemon.conf');
    writeFileSync(conf, avahiConfig(this.options));
    const empty = join(this.dir, 'etc');
    mkdirSync(join(empty, 'services'), { recursive: true });
    writeFileSync(join(empty, 'hosts'), '');
    const script = [
      'mount -t tmpfs ontap-avahi-run /run',
      'mount --bind "$1/services" /etc/avahi/services',
      'mount --bind "$1/hosts" /etc/avahi/hosts',
      'exec avahi-daemon -f "$2" --no-drop-root --no-chroot --no-rlimits --no-proc-title',
    ].join(' && ');
    this.daemon = new Background(
      [...DIE_WITH_PARENT, 'ip', 'netns', 'exec', netns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', empty, conf],
      join(this.dir, 'avahi-daemon.log'),
      this.clientEnv,
    );
    await this.daemon.waitFor(/Server startup complete\. Host name is /, 'avahi-daemon startup', timeoutMs);
    // avahi completes its startup even with none of its interfaces present (it then serves nothing).
    const log = this.log;
    const absent = this.options.interfaces.filter((i) => !log.includes(`New relevant interface ${i}.`));
    if (absent.length > 0) throw new Error(`avahi-daemon in ${netns} uses none of ${absent.join(',')}:\n${log}`);
  }

  /** The host name avahi ended up with (after any conflict), e.g. "alpha-2.local". */
  hostName(): string {
    const all = [...this.log.matchAll(/Server startup complete\. Host name is (\S+?)\.? Local/g)];
    const last = all.at(-1);
    if (!last) throw new Error(`avahi-daemon has not completed startup:\n${this.log}`);
    return last[1]!;
  }

  /**
   * Runs an avahi client until it exits or timeoutMs (the avahi-utils have no timeout flag;
   * avahi's own resolvers give up after 5 s). Returns its stdout.
   */
  private client(args: string[], timeoutMs: number): Promise<string> {
    return new Promise((resolve) => {
      const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: this.clientEnv });
      this.clients.add(child);
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr!.resume(); // drained; "Failed to resolve ..." is all it says
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.clients.delete(child);
        resolve(out);
      };
      child.on('close', done);
      child.on('error', done);
    });
  }

  /** avahi-resolve -4|-6 -n NAME: the addresses, or undefined if nobody answered in time. */
  async resolveName(name: string, family: 4 | 6, timeoutMs: number): Promise<string[] | undefined> {
    const out = await this.client(['avahi-resolve', `-${family}`, '-n', name], timeoutMs);
    const addresses = out.split('\n').map((l) => l.split('\t')).filter((f) => f.length === 2).map((f) => f[1]!.trim());
    return addresses.length > 0 ? addresses : undefined;
  }

  /** avahi-resolve -a ADDRESS: the name, or undefined if nobody answered in time. */
  async resolveAddress(address: string, timeoutMs: number): Promise<string | undefined> {
    const out = await this.client(['avahi-resolve', '-a', address], timeoutMs);
    const line = out.split('\n').map((l) => l.split('\t')).find((f) => f.length === 2);
    return line?.[1]?.trim();
  }

  /**
   * avahi-publish -a NAME ADDRESS (with the reverse PTR record), kept running until the handle's
   * stop(); resolves once avahi says the name is established (after probing).
   */
  async publishAddress(name: string, address: string, timeoutMs = 10000): Promise<PublishedAddress> {
    const publisher = new Background(
      [...DIE_WITH_PARENT, 'avahi-publish', '-a', name, address],
      join(this.dir, `publish-${++this.publishCount}.log`),
      this.clientEnv,
    );
    this.publishers.add(publisher);
    let established: string;
    try {
      established = (await publisher.waitFor(/Established under name '([^']+)'/, `avahi-publish ${name}`, timeoutMs))[1]!;
    } catch (e) {
      await publisher.kill();
      this.publishers.delete(publisher);
      throw e;
    }
    return {
      name: established,
      stop: async () => {
        await publisher.kill();
        this.publishers.delete(publisher);
      },
    };
  }

  /**
   * Kills every client and publisher, then avahi (SIGTERM: it sends goodbyes), then dbus, and removes
   * the temp dir. Safe after a failed start() and twice.
   */
  async stop(): Promise<void> {
    for (const c of this.clients) c.kill('SIGKILL');
    await Promise.all([...this.publishers].map((p) => p.kill()));
    this.publishers.clear();
    await this.daemon?.kill();
    await this.bus?.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
