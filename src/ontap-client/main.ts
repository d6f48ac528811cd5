#!/usr/bin/env node
import { openSync, closeSync, constants } from 'node:fs';
import { listenFds, ListenFdsError } from '../common/listen-fds.js';
import { Logger } from '../common/log.js';
import { ExitCode } from '../common/sysexits.js';
import { packageVersion } from '../common/version.js';
import { addonOrExit } from '../common/addon.js';
import { CLONE_NEWNET, CLONE_NEWUTS } from '../native/constants.js';
import { native } from '../native/index.js';
import { isTapType, type DeviceInfo } from '../protocol/messages.js';
import { parseClientArgs, requestFor, USAGE, UsageError, type ClientArgs } from './args.js';
import { resolveSocket, NoSocketFound } from './socket-path.js';
import { requestDevice, ClientError, type Lease } from './client.js';
import { resolveCommand, CommandNotFound, CommandNotExecutable } from './exec.js';

function die(code: number, message: string): never {
  process.stderr.write(`ontap: ${message}\n`);
  process.exit(code);
}

function environment(lease: Lease, args: ClientArgs): string[] {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('ONTAP_')) env[k] = v;
  }
  const d: DeviceInfo = lease.device;
  Object.assign(env, {
    ONTAP_TYPE: d.type, ONTAP_IFNAME: d.ifname, ONTAP_IFINDEX: String(d.ifindex), ONTAP_HWADDR: d.hwaddr,
    ONTAP_MTU: String(d.mtu), ONTAP_UPLINK: d.uplink, ONTAP_LEASE_FD: String(lease.fd),
  });
  if (d.name !== undefined) env.ONTAP_NAME = d.name;
  if (d.ipv4 !== undefined) {
    env.ONTAP_IPV4 = `${d.ipv4.address}/${d.ipv4.prefixLength}`;
    if (d.ipv4.gateway !== undefined) env.ONTAP_IPV4_GATEWAY = d.ipv4.gateway;
    env.ONTAP_DNS = d.ipv4.dns.join(',');
    if (d.ipv4.domain !== undefined) env.ONTAP_DOMAIN = d.ipv4.domain;
    env.ONTAP_DHCP_LEASE = String(d.ipv4.leaseSeconds);
    env.ONTAP_DHCP_SERVER = d.ipv4.server;
  }
  if (d.nsid !== undefined) env.ONTAP_NSID = String(d.nsid);
  if (isTapType(d.type)) {
    env.ONTAP_QUEUES = String(d.queues);
    env.ONTAP_VNET_HDR = d.vnetHdr ? '1' : '0';
    lease.tapFds.forEach((fd, i) => (env[`ONTAP_FD${i}`] = String(fd)));
  }
  // ONTAP_SOCKET is the caller's setting, not ours to drop.
  if (process.env.ONTAP_SOCKET !== undefined) env.ONTAP_SOCKET = process.env.ONTAP_SOCKET;
  void args;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** Socket activation descriptors passed to this very process; a broken LISTEN_FDS hands on none. */
function activationFds(log: Logger): number[] {
  try {
    return listenFds(process.env).map((passed) => passed.fd);
  } catch (e) {
    if (!(e instanceof ListenFdsError)) throw e;
    log.warn('listen-fds-ignored', { reason: e.message });
    return [];
  }
}

function main(): void {
  let args;
  try {
    args = parseClientArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) die(ExitCode.usage, `${e.message}\nTry 'ontap --help'.`);
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    process.exit(ExitCode.ok);
  }
  if (args === 'version') {
    process.stdout.write(`ontap ${packageVersion()}\n`);
    process.exit(ExitCode.ok);
  }
  addonOrExit('ontap');
  const log = new Logger('ontap', args.verbosity);
  let socketPath: string;
  try {
    socketPath = resolveSocket(args.socket, process.env);
  } catch (e) {
    die(e instanceof NoSocketFound ? ExitCode.unavailable : ExitCode.usage, (e as Error).message);
  }
  let command: string;
  try {
    command = resolveCommand(args.command[0]!, process.env.PATH);
  } catch (e) {
    die(e instanceof CommandNotExecutable ? 126 : 127, (e as Error).message);
  }
  const n = native();
  try {
    // Namespaces belong to the calling thread: Node's main thread, which then execs COMMAND.
    if (args.netns) n.unshare(CLONE_NEWNET);
    if (args.uts) {
      n.unshare(CLONE_NEWUTS);
      n.sethostname(args.name!);
    }
  } catch (e) {
    die(ExitCode.osErr, `cannot create a new namespace: ${(e as Error).message} (--netns and --uts need CAP_SYS_ADMIN)`);
  }

  const request = requestFor(args);

  let nsFd: number | undefined;
  if (!isTapType(args.type)) nsFd = openSync('/proc/self/ns/net', constants.O_RDONLY);
  log.debug('request', { socket: socketPath, type: args.type, queues: request.queues, name: args.name, mode: args.mode });
  let lease: Lease;
  try {
    // ontapd answers a DHCP request once the address is bound, or after its --dhcp-timeout (at most 60 s).
    lease = requestDevice(socketPath, request, nsFd, request.ipv4 !== undefined ? 75000 : undefined);
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    const where = e.field ? ` (field ${e.field})` : '';
    if (e.kind === 'unreachable') die(ExitCode.unavailable, e.message);
    if (e.kind === 'protocol') die(ExitCode.software, e.message);
    if (e.code === 'bad-request') die(ExitCode.usage, `ontapd: ${e.message}${where}`);
    if (e.code === 'unavailable' || e.code === 'timeout') die(ExitCode.unavailable, `ontapd: ${e.message}${where}`);
    if (e.code === 'internal') die(ExitCode.software, `ontapd: ${e.message}${where}`);
    die(ExitCode.noPerm, `ontapd refused: ${e.message}${where}`);
  } finally {
    if (nsFd !== undefined) closeSync(nsFd);
  }
  const { ipv4, ...device } = lease.device;
  log.debug('device', { ...device, fds: lease.tapFds.join(','), ipv4: ipv4 === undefined ? undefined : `${ipv4.address}/${ipv4.prefixLength}` });

  if (!isTapType(args.type)) {
    try {
      // A new namespace starts with lo down; workloads expect 127.0.0.1 to work.
      n.interfaceUp('lo');
    } catch (e) {
      log.warn('loopback-down', { error: (e as Error).message });
    }
  }
  // COMMAND inherits the lease (the connection) and the tap descriptors, nothing else of ours.
  // Node marked every inherited descriptor close-on-exec at start-up; the ones the caller asked
  // for, and systemd's socket-activation descriptors (execve keeps the pid, so LISTEN_PID stays
  // true for COMMAND), are handed on.
  for (const fd of [...args.keepFds, ...activationFds(log)]) {
    try {
      n.setCloexec(fd, false);
    } catch (e) {
      die(ExitCode.usage, `--keep-fd ${fd}: ${(e as Error).message}`);
    }
  }
  n.setCloexec(lease.fd, false);
  for (const fd of lease.tapFds) n.setCloexec(fd, false);
  try {
    n.execve(command, args.command, environment(lease, args));
  } catch (e) {
    const code = (e as { code?: string }).code;
    die(code === 'ENOENT' ? 127 : 126, `cannot execute ${command}: ${(e as Error).message}`);
  }
}

try {
  main();
} catch (e) {
  if (e instanceof CommandNotFound) die(127, e.message);
  die(ExitCode.software, `internal error: ${(e as Error).stack ?? String(e)}`);
}
