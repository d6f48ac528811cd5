import { MAX_QUEUES, PROTOCOL_VERSION, isTapType, type AllocateRequest, type DeviceType } from '../protocol/messages.js';
import { allowedText, requestRules, typesText, violation } from '../protocol/request-rules.js';
import { isLevel, levels, type Level } from '../common/log.js';

export const USAGE = `Usage: ontap [OPTIONS] [SOCKET] -- COMMAND [ARG...]

Ask ontapd for a network device on its uplink, then replace this process with COMMAND
(execve: same pid; signals and exit status are COMMAND's). The device lives as long as
COMMAND (or whatever inherits its connection).

  ipvlan, macvlan   the device appears in this process's network namespace, up;
                    lo is brought up too
  ipvtap, macvtap   the device stays on the host; COMMAND gets /dev/tapN descriptors
                    (one per queue) in ONTAP_FD0..ONTAP_FD<n-1>, with a virtio_net_hdr
                    before each frame (IFF_VNET_HDR), ready for qemu's -netdev tap,fd=

SOCKET is ontapd's socket for the uplink, e.g. /run/ontap/port.wlp3s0. Without it:
$ONTAP_SOCKET, else the only port.* in /run/ontap.

Options (before or after SOCKET):
  -t, --type TYPE      ipvlan (default), ipvtap, macvlan or macvtap; unless root, of the
                       family the uplink serves (ontapd --family)
  -m, --queues N       tap types: queues, one descriptor each (1..${MAX_QUEUES}, default 1)
  -n, --name NAME      workload name (a DNS label): stored as the device alias, gives a
                       stable IPv6 interface identifier (RFC 7217) and a stable MAC (macvlan)
      --mode MODE      ipvlan/ipvtap: l2, l3, l3s (default and, unless root, the only one
                       allowed: the uplink's, ontapd --ipvlan-mode)
                       macvlan/macvtap: bridge (default), private, vepa, passthru
      --flag FLAG      ipvlan/ipvtap: bridge, private, vepa (likewise the uplink's)
      --dhcp           ipvlan/macvlan: ontapd leases an IPv4 address for the device from
                       the LAN's DHCP server and holds it while COMMAND runs; COMMAND starts
                       once the address is on the device (ontapd --dhcp-timeout, 10 s)
      --ipv4 METHOD    the same as --dhcp for METHOD dhcp (the only one)
      --netns          run COMMAND in a new network namespace (needs CAP_SYS_ADMIN)
      --uts            run COMMAND in a new UTS namespace with hostname NAME (needs -n)
      --keep-fd N      hand inherited descriptor N on to COMMAND (repeatable); the ones
                       systemd passed (LISTEN_FDS, LISTEN_PID = this pid) are kept anyway
      --verbosity LVL  ${levels.join('|')} (default warn)
  -h, --help           show this help
      --version        show the version

Environment given to COMMAND:
  ONTAP_IFNAME, ONTAP_IFINDEX, ONTAP_HWADDR, ONTAP_MTU, ONTAP_TYPE, ONTAP_UPLINK,
  ONTAP_NAME, ONTAP_NSID (ipvlan/macvlan), ONTAP_QUEUES, ONTAP_FD0.. and ONTAP_VNET_HDR=1
  (tap types), ONTAP_LEASE_FD (the connection that keeps the device: keep it open);
  with --dhcp: ONTAP_IPV4 (address/prefix), ONTAP_IPV4_GATEWAY, ONTAP_DNS (comma-separated),
  ONTAP_DOMAIN, ONTAP_DHCP_LEASE (seconds), ONTAP_DHCP_SERVER.

Exit status: COMMAND's own; before the exec: 64 usage, 69 ontapd unreachable, 77 refused
by ontapd, 70 other failures, 126/127 COMMAND not executable / not found. See ontap(1).
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface ClientArgs {
  type: DeviceType;
  queues: number;
  name: string | undefined;
  mode: string | undefined;
  flag: string | undefined;
  netns: boolean;
  uts: boolean;
  /** Ask ontapd for an IPv4 lease (request ipv4: "dhcp"). */
  dhcp: boolean;
  /** The request's ipv4 method: "dhcp" (--dhcp, --ipv4 dhcp) or none. */
  ipv4: string | undefined;
  /** Inherited descriptors to hand on to COMMAND (Node marks every inherited one close-on-exec). */
  keepFds: number[];
  verbosity: Level;
  socket: string | undefined;
  command: string[];
}

export type Parsed = ClientArgs | 'help' | 'version';

const withValue = new Map<string, keyof ClientArgs>([
  ['-t', 'type'], ['--type', 'type'], ['-m', 'queues'], ['--queues', 'queues'], ['-n', 'name'], ['--name', 'name'],
  ['--mode', 'mode'], ['--flag', 'flag'], ['--ipv4', 'ipv4'], ['--verbosity', 'verbosity'],
]);

/** Hand-written rather than util.parseArgs: options may follow SOCKET and everything after -- is COMMAND. */
export function parseClientArgs(argv: string[]): Parsed {
  const raw: Record<string, string> = {};
  const flags = new Set<string>();
  const positionals: string[] = [];
  const keepFds: number[] = [];
  let command: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      command = argv.slice(i + 1);
      break;
    }
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--version') return 'version';
    if (arg === '--keep-fd' || arg.startsWith('--keep-fd=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (value === undefined || !/^[0-9]+$/.test(value) || Number(value) < 3) {
        throw new UsageError(`--keep-fd needs a descriptor number of 3 or more, not "${value ?? ''}"`);
      }
      keepFds.push(Number(value));
      continue;
    }
    if (arg === '--netns' || arg === '--uts' || arg === '--dhcp') {
      flags.add(arg.slice(2));
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    const field = withValue.get(key);
    if (field !== undefined) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${key} needs a value`);
      raw[field] = value;
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
    positionals.push(arg);
  }
  if (command === undefined || command.length === 0) throw new UsageError('missing -- COMMAND [ARG...]');
  if (positionals.length > 1) throw new UsageError(`one SOCKET at most, got ${positionals.join(' ')} (put COMMAND after --)`);

  // The request's rules come from one table (src/protocol/request-rules.ts), ontapd's too.
  const rules = requestRules;
  const type = (raw.type ?? 'ipvlan') as DeviceType;
  if (violation(rules.type, type, type) !== undefined) throw new UsageError(`--type must be ${allowedText(rules.type)}, not "${type}"`);
  let queues = 1;
  if (raw.queues !== undefined) {
    // Digits only: Number() would also take " 2", "0x2" and "2e0".
    const problem = /^[0-9]+$/.test(raw.queues) ? violation(rules.queues, Number(raw.queues), type) : 'value';
    if (problem === 'value') throw new UsageError(`--queues must be ${allowedText(rules.queues)}, not "${raw.queues}"`);
    if (problem === 'type') throw new UsageError(`--queues is for ${typesText(rules.queues.onlyFor)}, not ${type}`);
    queues = Number(raw.queues);
  }
  if (raw.name !== undefined && violation(rules.name, raw.name, type) !== undefined) {
    throw new UsageError(`--name must be ${allowedText(rules.name)}, not "${raw.name}"`);
  }
  if (raw.mode !== undefined && violation(rules.mode, raw.mode, type) !== undefined) {
    throw new UsageError(`--mode for ${type} must be ${allowedText(rules.mode, type)}, not "${raw.mode}"`);
  }
  if (raw.flag !== undefined) {
    const problem = violation(rules.flag, raw.flag, type);
    if (problem === 'type') throw new UsageError(`--flag is for ${typesText(rules.flag.onlyFor)}, not ${type}`);
    if (problem === 'value') throw new UsageError(`--flag must be ${allowedText(rules.flag)}, not "${raw.flag}"`);
  }
  const verbosity = raw.verbosity ?? 'warn';
  if (!isLevel(verbosity)) throw new UsageError(`--verbosity must be one of ${levels.join(', ')}, not "${verbosity}"`);
  const netns = flags.has('netns');
  const uts = flags.has('uts');
  if (uts && raw.name === undefined) throw new UsageError('--uts needs -n NAME (the hostname)');
  if (netns && isTapType(type)) throw new UsageError(`--netns is for ipvlan and macvlan: ${type} devices stay on the host`);
  if (flags.has('dhcp')) {
    if (raw.ipv4 !== undefined && raw.ipv4 !== 'dhcp') throw new UsageError(`--dhcp and --ipv4 ${raw.ipv4} say different things`);
    if (violation(rules.ipv4, 'dhcp', type) === 'type') {
      throw new UsageError(`--dhcp is for ${typesText(rules.ipv4.onlyFor)}: on ${type}, the guest runs its own DHCP client (with a client identifier of its own)`);
    }
    raw.ipv4 = 'dhcp';
  } else if (raw.ipv4 !== undefined) {
    const problem = violation(rules.ipv4, raw.ipv4, type);
    if (problem === 'type') throw new UsageError(`--ipv4 is for ${typesText(rules.ipv4.onlyFor)}, not ${type}: on it, the guest runs its own DHCP client`);
    if (problem === 'value') throw new UsageError(`--ipv4 must be ${allowedText(rules.ipv4)}, not "${raw.ipv4}"`);
  }
  const dhcp = raw.ipv4 === 'dhcp';
  return {
    type, queues, name: raw.name, mode: raw.mode, flag: raw.flag, netns, uts, dhcp, ipv4: raw.ipv4, verbosity,
    socket: positionals[0], command, keepFds,
  };
}

/** The request these arguments ask ontapd for. */
export function requestFor(args: ClientArgs): AllocateRequest {
  const request: AllocateRequest = { v: PROTOCOL_VERSION, op: 'allocate', type: args.type };
  if (isTapType(args.type)) request.queues = args.queues;
  if (args.name !== undefined) request.name = args.name;
  if (args.mode !== undefined) request.mode = args.mode;
  if (args.flag !== undefined) request.flag = args.flag;
  if (args.ipv4 !== undefined) request.ipv4 = args.ipv4;
  return request;
}
