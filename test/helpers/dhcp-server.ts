/**
 * Real DHCPv4 servers in a test's namespace, for integration tests of a DHCP client: dnsmasq
 * (startDnsmasq) and Kea (startKea). Each runs in the foreground under `ip netns exec`, with its
 * config, lease file and log in a private temp dir that stop() removes, on an interface address
 * the helper adds (and stop() removes again, if the helper added it).
 *
 * Both are ready when their sockets are open in the namespace (looked at with ss, not a sleep):
 * dnsmasq's UDP socket on port 67 bound to the interface; Kea's UDP socket on port 67 and its
 * packet socket on the interface.
 *
 * Seen here (dnsmasq 2.90, Kea 2.2.0, busybox 1.35 udhcpc on a veth):
 * - dnsmasq pings an address before it first offers it and stays silent meanwhile: a new client's
 *   first lease takes one client retransmission (3 s for udhcpc). `extraArgs: ['--no-ping']` makes
 *   it about 0.1 s. A lease time under 2 minutes is raised to 2 minutes without a word, hence
 *   leaseSeconds >= 120 here.
 * - dnsmasq rewrites its whole lease file in place (truncate, then write) on every change, and
 *   removes a lease at once on DHCPRELEASE.
 * - Kea needs its raw sockets (dhcp-socket-type raw): with "udp" it binds the interface's address,
 *   and a client's broadcast to 255.255.255.255 never reaches it (no packet at all, broadcast flag
 *   or not).
 * - Kea takes any valid-lifetime, even 0 (it gives out "lease time 0"). Its memfile marks a deleted
 *   lease with a row of valid_lifetime 0, so a lease of 0 cannot be told from a deletion in the
 *   file: validSeconds >= 1 here.
 * - Kea answers within a millisecond (a whole DISCOVER-to-ACK with udhcpc: about 0.1 s). It
 *   appends a row per change, there by the time the client has its ACK; an expired lease is
 *   reclaimed within a second (state 2, hostname cleared), a released one deleted (a row with
 *   valid_lifetime 0). With flush-reclaimed-timer-wait-time 0 Kea deletes expired leases instead
 *   of keeping them as state 2, so it is 25 here.
 * - Kea NAKs less than one might think: see KeaServer.restart().
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Background } from './background.js';
import { hasCommand } from './requirements.js';

/** If the test process dies without its after() hooks, the kernel kills the server too. */
const DIE_WITH_PARENT = ['setpriv', '--pdeathsig', 'KILL'];
const DIR_PREFIX = 'ontap-dhcp-';
const POLL_MS = 20;

/** The first of dnsmasq, kea-dhcp4, ss, setpriv missing here, as a skip reason. */
export function dhcpServersMissing(): string | undefined {
  const needs: Array<[string, string]> = [
    ['dnsmasq', 'dnsmasq-base'],
    ['kea-dhcp4', 'kea-dhcp4-server'],
    ['ss', 'iproute2'],
    ['setpriv', 'util-linux'],
  ];
  for (const [cmd, pkg] of needs) if (!hasCommand(cmd)) return `needs ${cmd} (apt-get install ${pkg})`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Blocks for ms (for the synchronous lease readers' retries). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Temp dirs of servers whose test process died without stop() (the servers died with it). */
function sweepStaleDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = name.startsWith(DIR_PREFIX) ? /^ontap-dhcp-(\d+)-/.exec(name) : null;
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

interface Cidr { address: string; prefix: number }

function parseCidr(cidr: string): Cidr {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) > 32 || m[1]!.split('.').some((o) => Number(o) > 255)) {
    throw new Error(`not an IPv4 address with prefix length: ${cidr}`);
  }
  return { address: m[1]!, prefix: Number(m[2]) };
}

function netmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/**
 * The server's own address on its interface. Added unless already there; remove() takes it away
 * again only if it was added here.
 */
class InterfaceAddress {
  private added = false;

  constructor(readonly netns: string, readonly ifname: string, readonly cidr: string) {}

  add(): void {
    const { address, prefix } = parseCidr(this.cidr);
    const shown = JSON.parse(run('ip', ['-n', this.netns, '-j', 'addr', 'show', 'dev', this.ifname])) as Array<{
      addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
    }>;
    const present = shown[0]?.addr_info?.some((a) => a.family === 'inet' && a.local === address && a.prefixlen === prefix) ?? false;
    if (present) return;
    run('ip', ['-n', this.netns, 'addr', 'add', this.cidr, 'dev', this.ifname]);
    this.added = true;
  }

  remove(): void {
    if (!this.added) return;
    this.added = false;
    try {
      run('ip', ['-n', this.netns, 'addr', 'del', this.cidr, 'dev', this.ifname]);
    } catch {
      // the interface or the namespace is gone already
    }
  }
}

/** `ss` in the namespace: the lines (without header) of sockets pid holds. */
function socketsOf(netns: string, pid: number, ssArgs: string[]): string[] {
  let out: string;
  try {
    out = run('ip', ['netns', 'exec', netns, 'ss', '-H', ...ssArgs]);
  } catch {
    return [];
  }
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`));
}

/** Polls ready() until true, failing early (with the log) if the server exits. */
async function waitUntil(server: Background, what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (ready()) return;
    if (server.exited) throw new Error(`${server.argv.join(' ')}\nexited before ${what}:\n${server.log}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${server.log}`);
    await sleep(POLL_MS);
  }
}

/**
 * Reads a file the server may be rewriting right now: until two reads 5 ms apart agree and the
 * text ends at a line end (dnsmasq truncates and rewrites; Kea appends a row at a time).
 */
function readSettled(path: string): string {
  const read = () => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    }
  };
  let text = read();
  for (let i = 0; i < 20; i++) {
    sleepSync(5);
    const again = read();
    if (again === text && (text === '' || text.endsWith('\n'))) return text;
    text = again;
  }
  // Still changing after 100 ms: drop a partial last line and take what is there.
  return text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
}

async function waitForLeases<L>(
  what: string,
  server: () => Background,
  leases: () => L[],
  done: (all: L[]) => L | true | undefined,
  timeoutMs: number,
  leaseFile: string,
): Promise<L | true> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = done(leases());
    if (r !== undefined) return r;
    // server(), not a Background: Kea's restart() replaces it meanwhile.
    if (server().exited) throw new Error(`DHCP server exited while waiting for ${what}:\n${server().log}`);
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${leaseFile}:\n${readSettled(leaseFile)}\nlog:\n${server().log.slice(-4000)}`);
    }
    await sleep(POLL_MS);
  }
}

async function stopServer(server: Background | undefined): Promise<void> {
  if (!server) return;
  // The process group (ip netns exec and setpriv exec, so it is the server itself, and anything
  // it forked, such as a dnsmasq lease script).
  await server.kill('SIGTERM', 5000);
}

// ---------------------------------------------------------------------------------------------
// dnsmasq

export interface DnsmasqOptions {
  netns: string;
  ifname: string;
  /** The server's own address with prefix length, e.g. '10.78.0.1/24'; added to ifname. */
  address: string;
  /** First and last address handed out (in address's subnet). */
  range: [string, string];
  /** Lease time; dnsmasq's minimum is 120 (shorter is silently raised to it). */
  leaseSeconds: number;
  /** More dnsmasq options, e.g. ['--no-ping'] for a first offer without the 3 s ping check. */
  extraArgs?: string[];
}

/** A line of dnsmasq's lease file: "expiry mac ip hostname clientid", '*' for none. */
export interface DnsmasqLease {
  /** Unix time the lease expires (0: infinite). */
  expires: number;
  /** "aa:bb:cc:dd:ee:ff" (dnsmasq prefixes "TYPE-" for hardware other than ethernet). */
  mac: string;
  address: string;
  hostname: string | undefined;
  /** Colon-separated hex as the client sent option 61, type byte included: "ff:00:00:00:01:...". */
  clientId: string | undefined;
}

export interface DnsmasqServer {
  readonly pid: number;
  readonly dir: string;
  readonly leaseFile: string;
  /** dnsmasq's stderr (--log-facility=-, with --log-dhcp detail). */
  log(): string;
  /** The current leases (IPv4 lines of the lease file). */
  leases(): DnsmasqLease[];
  /** Resolves with the first lease matching pred. */
  waitForLease(pred: (l: DnsmasqLease) => boolean, timeoutMs?: number): Promise<DnsmasqLease>;
  /** Resolves once no lease matches pred. */
  waitForNoLease(pred: (l: DnsmasqLease) => boolean, timeoutMs?: number): Promise<void>;
  /** Kills dnsmasq (SIGTERM, then SIGKILL), removes the address and the temp dir. Safe twice. */
  stop(): Promise<void>;
}

/** Parses dnsmasq's lease file (DHCPv4 lines; the "duid" line and DHCPv6 lines are skipped). */
export function parseDnsmasqLeases(text: string): DnsmasqLease[] {
  const leases: DnsmasqLease[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d+$/.test(f[0]!) || !/^\d{1,3}(\.\d{1,3}){3}$/.test(f[2]!)) continue;
    const none = (s: string) => (s === '*' ? undefined : s);
    leases.push({ expires: Number(f[0]), mac: f[1]!, address: f[2]!, hostname: none(f[3]!), clientId: none(f[4]!) });
  }
  return leases;
}

export async function startDnsmasq(opts: DnsmasqOptions, timeoutMs = 10000): Promise<DnsmasqServer> {
  if (!Number.isInteger(opts.leaseSeconds) || opts.leaseSeconds < 120) {
    throw new Error(`dnsmasq leaseSeconds must be an integer >= 120 (its minimum; shorter is raised to 120): ${opts.leaseSeconds}`);
  }
  const { prefix } = parseCidr(opts.address);
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-dnsmasq-`));
  const leaseFile = join(dir, 'dnsmasq.leases');
  const logFile = join(dir, 'dnsmasq.log');
  const address = new InterfaceAddress(opts.netns, opts.ifname, opts.address);
  let server: Background | undefined;

  const stop = async () => {
    await stopServer(server);
    address.remove();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    address.add();
    server = new Background(
      [
        ...DIE_WITH_PARENT, 'ip', 'netns', 'exec', opts.netns,
        'dnsmasq',
        '--no-daemon', // foreground, no pid file
        '--conf-file=/dev/null', // not /etc/dnsmasq.conf
        '--port=0', // no DNS
        '--user=root',
        '--group=root',
        `--interface=${opts.ifname}`,
        '--bind-interfaces',
        `--dhcp-range=${opts.range[0]},${opts.range[1]},${netmask(prefix)},${opts.leaseSeconds}`,
        `--dhcp-leasefile=${leaseFile}`,
        '--log-dhcp',
        '--dhcp-authoritative',
        '--log-facility=-', // stderr only
        ...(opts.extraArgs ?? []),
      ],
      logFile,
    );
    const pid = server.pid;
    await waitUntil(server, `dnsmasq bound to port 67 on ${opts.ifname} in ${opts.netns}`, () =>
      socketsOf(opts.netns, pid, ['-lunp', 'sport = :67']).some((l) => l.includes(`%${opts.ifname}:`)), timeoutMs);
  } catch (e) {
    await stop();
    throw e;
  }

  const bg = server;
  const leases = () => parseDnsmasqLeases(readSettled(leaseFile));
  return {
    pid: bg.pid,
    dir,
    leaseFile,
    log: () => bg.log,
    leases,
    waitForLease: async (pred, ms = 10000) =>
      (await waitForLeases('a dnsmasq lease', () => bg, leases, (all) => all.find(pred), ms, leaseFile)) as DnsmasqLease,
    waitForNoLease: async (pred, ms = 10000) => {
      await waitForLeases('no matching dnsmasq lease', () => bg, leases, (all) => (all.some(pred) ? undefined : true), ms, leaseFile);
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Kea

export interface KeaOptions {
  netns: string;
  ifname: string;
  /** The server's own address with prefix length, e.g. '10.79.0.1/24'; added to ifname. */
  address: string;
  /** The subnet served, e.g. '10.79.0.0/24'. */
  subnet: string;
  /** First and last address of the pool. */
  pool: [string, string];
  /** valid-lifetime (>= 1: Kea takes 0, but its lease file cannot tell a lease of 0 from a deletion). */
  validSeconds: number;
  /** renew-timer (T1); without it Kea sends no T1 (the client takes 50%). */
  renewSeconds?: number;
  /** rebind-timer (T2); without it Kea sends no T2 (the client takes 87.5%). */
  rebindSeconds?: number;
  /** Option 3. */
  routers?: string[];
  /** Option 6. */
  dns?: string[];
  /** Option 15. */
  domain?: string;
}

/** Lease states in Kea's memfile. */
export const KEA_STATE_DEFAULT = 0;
export const KEA_STATE_DECLINED = 1;
export const KEA_STATE_EXPIRED_RECLAIMED = 2;

/** A lease as the last row for its address in Kea's memfile says. */
export interface KeaLease {
  address: string;
  hwaddr: string;
  /** Colon-separated hex, type byte included: "ff:00:00:00:01:...". */
  clientId: string | undefined;
  validLifetime: number;
  /** Unix time the lease expires (cltt + valid_lifetime). */
  expire: number;
  subnetId: number;
  hostname: string | undefined;
  /** KEA_STATE_DEFAULT (0), KEA_STATE_DECLINED (1), KEA_STATE_EXPIRED_RECLAIMED (2). */
  state: number;
}

export interface KeaServer {
  /** kea-dhcp4's pid (a new one after restart()). */
  readonly pid: number;
  readonly dir: string;
  readonly leaseFile: string;
  /** The options it runs with now. */
  readonly options: KeaOptions;
  /** kea-dhcp4's stdout and stderr, over all restarts. */
  log(): string;
  /** The leases in the memfile: the last row per address, deleted leases left out. */
  leases(): KeaLease[];
  /** Resolves with the first lease matching pred. */
  waitForLease(pred: (l: KeaLease) => boolean, timeoutMs?: number): Promise<KeaLease>;
  /** Resolves once no lease matches pred (a released lease is deleted; an expired one stays, state 2). */
  waitForNoLease(pred: (l: KeaLease) => boolean, timeoutMs?: number): Promise<void>;
  /**
   * Stops kea-dhcp4 and starts it again with these options changed. The lease file is kept (Kea
   * loads it again) unless forgetLeases. What Kea 2.2 NAKs (seen here):
   * - another subnet and pool, same `address`: a renew of the old address (unicast to the server,
   *   which still answers ARP) gets DHCP4_PACKET_NAK_0001 ("failed to select a subnet"); so does an
   *   INIT-REBOOT request (broadcast, requested-address, no ciaddr).
   * - forgetLeases (pool as it was or not): an INIT-REBOOT request for the old address is NAKed
   *   (authoritative); a renew of it is NAKed only if the address is in the pool and meanwhile
   *   leased to another client.
   * - another pool alone (old address still in the subnet): no NAK at all, the request is
   *   dropped (ALLOC_ENGINE_V4_REQUEST_OUT_OF_POOL), whether the lease is kept or forgotten.
   * Rebinding broadcasts (ciaddr set) for the old address went unanswered in every case.
   */
  restart(changes: Partial<Omit<KeaOptions, 'netns' | 'ifname'>>, how?: { forgetLeases?: boolean }): Promise<void>;
  /** Kills kea-dhcp4 (SIGTERM, then SIGKILL), removes the address and the temp dir. Safe twice. */
  stop(): Promise<void>;
}

/**
 * Parses Kea's memfile CSV (header line naming the columns). Rows are appended as leases change;
 * the last row per address wins, and one with valid_lifetime 0 means the lease was deleted
 * (released, or reclaimed when reclaimed leases are not held).
 */
export function parseKeaLeases(text: string): KeaLease[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift()?.split(',') ?? [];
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`Kea lease file has no column ${name}: ${header.join(',')}`);
    return i;
  };
  if (header.length === 0) return [];
  const c = {
    address: col('address'), hwaddr: col('hwaddr'), clientId: col('client_id'), valid: col('valid_lifetime'),
    expire: col('expire'), subnetId: col('subnet_id'), hostname: col('hostname'), state: col('state'),
  };
  const byAddress = new Map<string, KeaLease | undefined>();
  for (const line of lines) {
    // Kea escapes commas in text fields as "&#x2c" (user_context holds JSON): a plain split is right.
    const f = line.split(',');
    if (f.length < header.length - 1) continue;
    const text = (i: number) => (f[i] ? f[i]!.replace(/&#x2c/g, ',') : undefined);
    const lease: KeaLease = {
      address: f[c.address]!,
      hwaddr: f[c.hwaddr] ?? '',
      clientId: text(c.clientId),
      validLifetime: Number(f[c.valid]),
      expire: Number(f[c.expire]),
      subnetId: Number(f[c.subnetId]),
      hostname: text(c.hostname),
      state: Number(f[c.state] ?? 0),
    };
    byAddress.delete(lease.address); // keep the map in order of last change
    byAddress.set(lease.address, lease.validLifetime === 0 ? undefined : lease);
  }
  return [...byAddress.values()].filter((l): l is KeaLease => l !== undefined);
}

function keaConfig(o: KeaOptions, leaseFile: string): object {
  const options: Array<{ name: string; data: string }> = [];
  if (o.routers?.length) options.push({ name: 'routers', data: o.routers.join(', ') });
  if (o.dns?.length) options.push({ name: 'domain-name-servers', data: o.dns.join(', ') });
  if (o.domain !== undefined) options.push({ name: 'domain-name', data: o.domain });
  return {
    Dhcp4: {
      // raw: with udp Kea binds the interface's address and never sees a client's broadcast.
      'interfaces-config': { interfaces: [o.ifname], 'dhcp-socket-type': 'raw' },
      'lease-database': { type: 'memfile', name: leaseFile, persist: true, 'lfc-interval': 0 },
      // The only server on the link: NAK requests for addresses it does not know (as dnsmasq's
      // --dhcp-authoritative).
      authoritative: true,
      'valid-lifetime': o.validSeconds,
      ...(o.renewSeconds !== undefined ? { 'renew-timer': o.renewSeconds } : {}),
      ...(o.rebindSeconds !== undefined ? { 'rebind-timer': o.rebindSeconds } : {}),
      // Expired leases are reclaimed every second and then kept (state 2) for an hour; with the
      // flush timer off (0) Kea would delete them instead.
      'expired-leases-processing': {
        'reclaim-timer-wait-time': 1,
        'hold-reclaimed-time': 3600,
        'flush-reclaimed-timer-wait-time': 25,
      },
      subnet4: [
        {
          id: 1,
          subnet: o.subnet,
          interface: o.ifname,
          pools: [{ pool: `${o.pool[0]} - ${o.pool[1]}` }],
          ...(options.length > 0 ? { 'option-data': options } : {}),
        },
      ],
      loggers: [
        { name: 'kea-dhcp4', output_options: [{ output: 'stdout', flush: true }], severity: 'INFO' },
        // A line per packet received and sent, and per lease decision (NAKs included), without
        // the lease reclamation's lines every second (kea-dhcp4.alloc-engine, kea-dhcp4.dhcpsrv).
        ...['kea-dhcp4.packets', 'kea-dhcp4.leases', 'kea-dhcp4.bad-packets'].map((name) => (
          { name, output_options: [{ output: 'stdout', flush: true }], severity: 'DEBUG', debuglevel: 40 })),
      ],
    },
  };
}

export async function startKea(opts: KeaOptions, timeoutMs = 10000): Promise<KeaServer> {
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-kea-`));
  const leaseFile = join(dir, 'kea-leases4.csv');
  const logFile = join(dir, 'kea-dhcp4.log');
  const configFile = join(dir, 'kea-dhcp4.json');
  let current = { ...opts };
  let address: InterfaceAddress | undefined;
  let server: Background | undefined;

  const launch = async (o: KeaOptions) => {
    if (!Number.isInteger(o.validSeconds) || o.validSeconds < 1) {
      throw new Error(`Kea validSeconds must be an integer >= 1: ${o.validSeconds}`);
    }
    parseCidr(o.subnet);
    if (address?.cidr !== o.address) {
      address?.remove();
      address = new InterfaceAddress(o.netns, o.ifname, o.address);
      address.add();
    }
    writeFileSync(configFile, JSON.stringify(keaConfig(o, leaseFile), null, 2));
    server = new Background(
      [...DIE_WITH_PARENT, 'ip', 'netns', 'exec', o.netns, 'kea-dhcp4', '-c', configFile],
      logFile,
      // Its pid file (kea-dhcp4.kea-dhcp4.pid, refused if it names a live process) in the temp
      // dir instead of /run/kea; no log4cplus lock file.
      { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: 'none' },
    );
    const bg = server;
    const { address: own } = parseCidr(o.address);
    await waitUntil(bg, `kea-dhcp4 sockets on ${o.ifname} in ${o.netns}`, () =>
      /DHCP4_STARTED/.test(bg.log) &&
      socketsOf(o.netns, bg.pid, ['-lunp', 'sport = :67']).some((l) => l.includes(`${own}:67`)) &&
      socketsOf(o.netns, bg.pid, ['-l', '-0', '-p']).some((l) => l.includes(`*:${o.ifname} `)), timeoutMs);
  };

  const stop = async () => {
    await stopServer(server);
    address?.remove();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await launch(current);
  } catch (e) {
    await stop();
    throw e;
  }

  const leases = () => parseKeaLeases(readSettled(leaseFile));
  return {
    get pid() {
      return server?.pid ?? -1;
    },
    dir,
    leaseFile,
    get options() {
      return current;
    },
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    leases,
    waitForLease: async (pred, ms = 10000) =>
      (await waitForLeases('a Kea lease', () => server!, leases, (all) => all.find(pred), ms, leaseFile)) as KeaLease,
    waitForNoLease: async (pred, ms = 10000) => {
      await waitForLeases('no matching Kea lease', () => server!, leases, (all) => (all.some(pred) ? undefined : true), ms, leaseFile);
    },
    restart: async (changes, how = {}) => {
      await stopServer(server);
      if (how.forgetLeases) rmSync(leaseFile, { force: true });
      current = { ...current, ...changes };
      try {
        await launch(current);
      } catch (e) {
        await stop();
        throw e;
      }
    },
    stop,
  };
}
