#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { Logger, isLevel, levels, type Level } from '../common/log.js';
import { ExitCode } from '../common/sysexits.js';
import { isErrno } from '../native/index.js';
import { packageVersion } from '../common/version.js';
import { addonOrExit } from '../common/addon.js';
import { RouteSocket } from '../netns/route-socket.js';
import { Daemon, defaultLimits, type DaemonLimits, type DaemonPolicy } from './daemon.js';
import { bindPort, socketsFromSystemd, unlinkPort, ListenerError, type PortSocket } from './listener.js';
import { sdNotify } from './notify.js';
import { hostKey } from './identity.js';
import { allowedText, oneOf, requestRules, uplinkSettings, violation, type UplinkSettingName } from '../protocol/request-rules.js';
import type { UplinkConfig } from './uplink-policy.js';

const USAGE = `Usage: ontapd [OPTIONS] UPLINK...

Serve ipvlan, ipvtap, macvlan and macvtap devices over UPLINK to local callers, one
SOCK_SEQPACKET socket per uplink at DIR/port.UPLINK. A device lives as long as the
connection that asked for it.

Options:
  --socket-dir DIR       where to create port.UPLINK sockets (default /run/ontap)
  --group NAME           group owning the sockets (default root)
  --mode OCTAL           permissions of the sockets (default 0660)
  --max-devices N        devices held at once by all callers (default ${defaultLimits.maxDevices})
  --max-per-uid N        devices held at once by one uid (default ${defaultLimits.maxPerUid})
  --request-timeout MS   time a connection has to send its request (default ${defaultLimits.requestTimeoutMs})
  --max-leases-per-uid N DHCP leases (ontap --dhcp) held at once by one uid other than root
                         (default ${defaultLimits.maxLeasesPerUid})
  --dhcp-timeout S       time a DHCP lease (ontap --dhcp) has to be bound before the request
                         fails as unavailable, 1..60 seconds (default ${defaultLimits.dhcpTimeoutMs / 1000})
  --family FAMILY        what the uplinks serve: ipvlan (ipvlan, ipvtap; the default) or
                         macvlan (macvlan, macvtap)
  --ipvlan-mode MODE     their ipvlan mode: ${uplinkSettings.ipvlanMode.values.join(', ')} (default ${uplinkSettings.ipvlanMode.default})
  --ipvlan-flag FLAG     their ipvlan flag: ${uplinkSettings.ipvlanFlag.values.join(', ')} (default ${uplinkSettings.ipvlanFlag.default})
                         callers other than root get these and may not ask for others
  --reserve NAME=UID     workload name NAME is uid UID's alone (a number or a user name);
                         repeatable. Unreserved names: the first live lease's uid holds it
  --verbosity LEVEL      ${levels.join('|')} (default info)
  -h, --help             show this help
  --version              show the version

Sockets passed by systemd socket activation (LISTEN_FDS) are used instead of creating
them; READY=1 is sent to NOTIFY_SOCKET once serving. See ontapd(8).
`;

class UsageError extends Error {}

interface Config {
  socketDir: string;
  gid: number | undefined;
  mode: number;
  verbosity: Level;
  limits: DaemonLimits;
  policy: DaemonPolicy;
  uplinks: string[];
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new UsageError(`--${name} must be a positive integer, not "${value}"`);
  return Number(value);
}

function groupId(name: string): number {
  if (/^[0-9]+$/.test(name)) return Number(name);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined) return Number(gid);
  }
  throw new UsageError(`--group: no group named "${name}" in /etc/group`);
}

function userId(name: string): number {
  if (/^[0-9]{1,10}$/.test(name) && Number(name) < 2 ** 32 - 1) return Number(name);
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid] = line.split(':');
    if (user === name && uid !== undefined) return Number(uid);
  }
  throw new UsageError(`--reserve: no user named "${name}" in /etc/passwd`);
}

/** --family, --ipvlan-mode, --ipvlan-flag: one of the setting's values, else its default. */
function uplinkConfig(values: Record<string, unknown>): UplinkConfig {
  const config = {} as UplinkConfig;
  for (const [name, setting] of Object.entries(uplinkSettings) as Array<[UplinkSettingName, (typeof uplinkSettings)[UplinkSettingName]]>) {
    const value = values[setting.option];
    if (value !== undefined && !(setting.values as readonly unknown[]).includes(value)) {
      throw new UsageError(`--${setting.option} must be ${oneOf(setting.values)}, not "${String(value)}"`);
    }
    config[name] = (value as string | undefined) ?? setting.default;
  }
  return config;
}

/** --reserve NAME=UID, repeated: each name for one uid. */
function reservations(values: string[]): Map<string, number> {
  const reserved = new Map<string, number>();
  for (const value of values) {
    const eq = value.indexOf('=');
    const name = value.slice(0, eq);
    if (eq < 0 || violation(requestRules.name, name, 'ipvlan') !== undefined) {
      throw new UsageError(`--reserve wants NAME=UID with NAME ${allowedText(requestRules.name)}, not "${value}"`);
    }
    const uid = userId(value.slice(eq + 1));
    if (reserved.has(name) && reserved.get(name) !== uid) throw new UsageError(`--reserve: "${name}" is reserved for two uids`);
    reserved.set(name, uid);
  }
  return reserved;
}

/** ontap waits 75 s for a DHCP request's answer: the timeout stays well inside that. */
function dhcpTimeout(value: string | undefined): number {
  if (value === undefined) return defaultLimits.dhcpTimeoutMs;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 60) throw new UsageError(`--dhcp-timeout must be a number of seconds between 1 and 60, not "${value}"`);
  return Number(value) * 1000;
}

/** Linux interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..". */
const IFNAME = /^(?!\.{1,2}$)[^/:\s]{1,15}$/;

function parse(argv: string[]): Config | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'socket-dir': { type: 'string' },
      group: { type: 'string' },
      mode: { type: 'string' },
      'max-devices': { type: 'string' },
      'max-per-uid': { type: 'string' },
      'request-timeout': { type: 'string' },
      'dhcp-timeout': { type: 'string' },
      'max-leases-per-uid': { type: 'string' },
      reserve: { type: 'string', multiple: true },
      family: { type: 'string' },
      'ipvlan-mode': { type: 'string' },
      'ipvlan-flag': { type: 'string' },
      verbosity: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  if (values.version) return 'version';
  const verbosity = values.verbosity ?? 'info';
  if (!isLevel(verbosity)) throw new UsageError(`--verbosity must be one of ${levels.join(', ')}, not "${verbosity}"`);
  const mode = values.mode ?? '0660';
  if (!/^0?[0-7]{3}$/.test(mode)) throw new UsageError(`--mode must be an octal mode like 0660, not "${mode}"`);
  for (const uplink of positionals) {
    if (!IFNAME.test(uplink)) throw new UsageError(`UPLINK "${uplink}" is not a valid interface name`);
  }
  return {
    socketDir: values['socket-dir'] ?? '/run/ontap',
    gid: values.group === undefined ? undefined : groupId(values.group),
    mode: parseInt(mode, 8),
    verbosity,
    uplinks: positionals,
    limits: {
      ...defaultLimits,
      maxDevices: positiveInt('max-devices', values['max-devices'], defaultLimits.maxDevices),
      maxPerUid: positiveInt('max-per-uid', values['max-per-uid'], defaultLimits.maxPerUid),
      requestTimeoutMs: positiveInt('request-timeout', values['request-timeout'], defaultLimits.requestTimeoutMs),
      dhcpTimeoutMs: dhcpTimeout(values['dhcp-timeout']),
      maxLeasesPerUid: positiveInt('max-leases-per-uid', values['max-leases-per-uid'], defaultLimits.maxLeasesPerUid),
    },
    policy: { reserved: reservations(values.reserve ?? []), uplink: uplinkConfig(values) },
  };
}

async function main(): Promise<number> {
  let config: Config | 'help' | 'version';
  try {
    config = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`ontapd: ${(e as Error).message}\nTry 'ontapd --help'.\n`);
    return ExitCode.usage;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return ExitCode.ok;
  }
  if (config === 'version') {
    process.stdout.write(`ontapd ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  addonOrExit('ontapd');
  const log = new Logger('ontapd', config.verbosity);
  const activated = socketsFromSystemd();
  const uplinks = config.uplinks.length > 0 ? config.uplinks : [...activated.keys()];
  if (uplinks.length === 0) {
    process.stderr.write(`ontapd: name at least one UPLINK\nTry 'ontapd --help'.\n`);
    return ExitCode.usage;
  }
  if (process.getuid?.() !== 0) log.warn('not-root', { reason: 'creating devices needs CAP_NET_ADMIN' });

  const rtnl = RouteSocket.open();
  let daemon: Daemon;
  try {
    daemon = new Daemon(rtnl, log, config.limits, hostKey(), config.policy);
  } catch (e) {
    // The link watch listens to every namespace: NETLINK_LISTEN_ALL_NSID needs CAP_NET_BROADCAST.
    const why = isErrno(e, 'EPERM') ? 'the link watch needs CAP_NET_BROADCAST (NETLINK_LISTEN_ALL_NSID)' : (e as Error).message;
    log.error('link-watch-failed', { error: (e as Error).message, reason: why });
    return ExitCode.osErr;
  }
  const ifindexes = new Set<number>();
  for (const uplink of uplinks) {
    try {
      ifindexes.add(rtnl.getLink({ ifname: uplink }).ifindex);
    } catch {
      log.warn('uplink-missing', { uplink, reason: 'requests fail until it exists' });
    }
  }
  const sockets: PortSocket[] = [];
  try {
    for (const uplink of uplinks) {
      const fd = activated.get(uplink);
      sockets.push(fd !== undefined ? { uplink, fd, path: undefined, ino: undefined } : bindPort(config.socketDir, uplink, config.mode, config.gid));
    }
  } catch (e) {
    for (const s of sockets) unlinkPort(s);
    log.error('listen-failed', { error: (e as Error).message });
    return e instanceof ListenerError ? ExitCode.unavailable : ExitCode.cantCreate;
  }
  // Reclaim only once our sockets are bound: binding fails when another ontapd serves an uplink,
  // and that one's devices are live.
  const reclaimed = daemon.releaser.reclaim(ifindexes);
  if (reclaimed > 0) log.info('reclaimed', { devices: reclaimed });
  for (const s of sockets) daemon.serve(s);
  sdNotify(`READY=1\nSTATUS=serving ${uplinks.join(' ')}\nMAINPID=${process.pid}`, log);

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal, devices: daemon.deviceCount });
      sdNotify('STOPPING=1', log);
      for (const s of sockets) unlinkPort(s);
      daemon.stop().then(() => {
        log.info('stopped', { released: daemon.releaser.released });
        resolve(ExitCode.ok);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => log.info('sighup-ignored'));
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    new Logger('ontapd').error('fatal', { error: (e as Error).stack ?? String(e) });
    process.exit(ExitCode.software);
  },
);
