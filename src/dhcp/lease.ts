/**
 * Whether a server's OFFER or ACK is a lease ontapd can configure, and that lease. Pure. The
 * message decoded (src/dhcp/message.ts) is well-formed; this checks that what it says makes sense
 * for a host on a LAN, and refuses (LeaseError naming the field and the rule) what would configure
 * a workload wrongly: the client logs the refusal and goes on waiting for another offer.
 *
 * Choices (docs/design.md "DHCP messages"):
 * - Subnet mask required: without it the prefix would be guessed from the address class, and a
 *   wrong guess makes a wrong on-link route. Masks must be contiguous, /1 to /31: /31 is a
 *   point-to-point link (RFC 3021), both addresses hosts; /32 is refused, since it leaves no on-link
 *   neighbour and so no reachable gateway without classless static routes (option 121), which
 *   ontapd does not install.
 * - Every router must be a host of the subnet (not its network or broadcast address, not the
 *   offered address): one outside refuses the whole offer, not just that router, because a server
 *   that names an unreachable gateway is misconfigured or forged, and half its list is no better.
 *   The gateway is the first router (RFC 2132 §3.5: in order of preference).
 * - Server id and lease time are required (RFC 2131 Table 3 makes both a MUST in OFFER and ACK:
 *   an OFFER is checked to predict its ACK). Lease time 0 is refused; 0xffffffff is Infinity.
 * - T1/T2: the server's when 0 < T1 < T2 < lease, else both RFC 2131 §4.4.5 defaults (0.5 and
 *   0.875 of the lease, whole seconds), and `timersAdjusted` says why for the caller's log: one bad
 *   value makes the other doubtful too, and renewing early is the safe side. With an infinite lease
 *   the defaults are infinite; finite server timers under it are kept if ordered.
 */
import { type DhcpMessage, INFINITE_LEASE, MessageType } from './message.js';

export interface Lease {
  /** yiaddr. */
  address: string;
  prefixLength: number;
  subnetMask: string;
  /** The first router, when the server named any. */
  gateway?: string;
  dns: string[];
  domain?: string;
  /** Infinity for an infinite lease (0xffffffff). */
  leaseSeconds: number;
  /** T1 (Infinity under an infinite lease unless the server gave a finite one). */
  renewalSeconds: number;
  /** T2. */
  rebindingSeconds: number;
  serverId: string;
  /** Set when the server's T1/T2 were replaced by the defaults: what was wrong, for a log line. */
  timersAdjusted?: string;
}

/** Carries no stack: a forged offer costs the client nothing but the check (as DhcpDecodeError). */
export class LeaseError extends Error {
  override readonly name = 'LeaseError';
  /** `type`, `yiaddr`, `subnetMask`, `router`, `dns`, `serverId`, `leaseSeconds`. */
  readonly field: string;
  readonly rule: string;
  constructor(field: string, rule: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${field}: ${rule}`);
    Error.stackTraceLimit = limit;
    this.field = field;
    this.rule = rule;
  }
}

function toU32(s: string | undefined, field: string): number {
  const parts = s?.split('.') ?? [];
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new LeaseError(field, `${JSON.stringify(s)} is not a dotted-quad IPv4 address`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function toQuad(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Why `a` cannot be a host's unicast address, or undefined when it can. */
function notUnicast(a: number): string | undefined {
  const top = a >>> 24;
  if (a === 0) return 'the unspecified address';
  if (top === 0) return 'in 0.0.0.0/8, "this network" (RFC 1122 §3.2.1.3: a source only at boot)';
  if (top === 127) return 'a loopback address (127.0.0.0/8)';
  if (a >>> 16 === 0xa9fe) return 'link-local (169.254.0.0/16, RFC 3927: self-assigned, never from DHCP)';
  if (top >= 224 && top <= 239) return 'a multicast address (224.0.0.0/4)';
  if (a === 0xffffffff) return 'the limited broadcast address';
  if (top >= 240) return 'reserved (class E, 240.0.0.0/4)';
  return undefined;
}

function timer(v: number | undefined): number | undefined {
  return v === undefined ? undefined : v === INFINITE_LEASE ? Infinity : v;
}

/** x < y, where an infinite timer may equal an infinite lease. */
function before(x: number, y: number): boolean {
  return x < y || (x === Infinity && y === Infinity);
}

/** The lease an OFFER or ACK describes; throws LeaseError when it is not one to configure. */
export function leaseFromAck(m: DhcpMessage): Lease {
  if (m.type !== MessageType.OFFER && m.type !== MessageType.ACK) throw new LeaseError('type', `message type ${m.type} is neither OFFER (2) nor ACK (5)`);

  const address = toU32(m.yiaddr, 'yiaddr');
  const bad = notUnicast(address);
  if (bad) throw new LeaseError('yiaddr', `${m.yiaddr} is ${bad}`);

  if (m.subnetMask === undefined) throw new LeaseError('subnetMask', 'missing: the prefix would have to be guessed from the address class');
  const mask = toU32(m.subnetMask, 'subnetMask');
  const hostBits = ~mask >>> 0;
  if ((hostBits & (hostBits + 1)) !== 0) throw new LeaseError('subnetMask', `${m.subnetMask} is not contiguous`);
  const prefixLength = 32 - Math.log2(hostBits + 1);
  if (prefixLength === 0) throw new LeaseError('subnetMask', '0.0.0.0 (/0) would put every address on the link');
  if (prefixLength === 32) {
    throw new LeaseError('subnetMask', '/32 leaves no on-link neighbour, so no reachable gateway without classless static routes (option 121, not supported)');
  }
  const network = (address & mask) >>> 0;
  const broadcast = (network | hostBits) >>> 0;
  // RFC 3021: on a /31 both addresses are hosts
  const edges = prefixLength <= 30;
  if (edges && address === network) throw new LeaseError('yiaddr', `${m.yiaddr} is the network address of ${toQuad(network)}/${prefixLength}`);
  if (edges && address === broadcast) throw new LeaseError('yiaddr', `${m.yiaddr} is the broadcast address of ${toQuad(network)}/${prefixLength}`);

  for (const r of m.routers ?? []) {
    const a = toU32(r, 'router');
    const why =
      notUnicast(a) ??
      (((a & mask) >>> 0) !== network
        ? `outside ${toQuad(network)}/${prefixLength}, so not reachable on the link`
        : a === address
          ? 'the offered address itself'
          : edges && (a === network || a === broadcast)
            ? `the ${a === network ? 'network' : 'broadcast'} address of ${toQuad(network)}/${prefixLength}`
            : undefined);
    if (why) throw new LeaseError('router', `${r} is ${why}`);
  }

  for (const d of m.dns ?? []) {
    const why = notUnicast(toU32(d, 'dns'));
    if (why) throw new LeaseError('dns', `${d} is ${why}`);
  }

  if (m.serverId === undefined) throw new LeaseError('serverId', 'missing (RFC 2131 Table 3: required in OFFER and ACK)');
  const sid = notUnicast(toU32(m.serverId, 'serverId'));
  if (sid) throw new LeaseError('serverId', `${m.serverId} is ${sid}`);

  if (m.leaseSeconds === undefined) throw new LeaseError('leaseSeconds', 'missing (RFC 2131 Table 3: required in OFFER and ACK)');
  if (m.leaseSeconds === 0) throw new LeaseError('leaseSeconds', '0: a lease that has already ended');
  const lease = m.leaseSeconds === INFINITE_LEASE ? Infinity : m.leaseSeconds;

  const defaults = [Math.floor(lease * 0.5), Math.floor(lease * 0.875)] as const; // Infinity stays Infinity
  const given = [timer(m.renewalSeconds), timer(m.rebindingSeconds)] as const;
  let t1 = given[0] ?? defaults[0];
  let t2 = given[1] ?? defaults[1];
  let timersAdjusted: string | undefined;
  if ((given[0] !== undefined || given[1] !== undefined) && !(t1 > 0 && before(t1, t2) && before(t2, lease))) {
    timersAdjusted = `T1 ${t1} and T2 ${t2} with a ${lease} s lease are not 0 < T1 < T2 < lease: RFC 2131 §4.4.5 defaults ${defaults[0]} and ${defaults[1]} used`;
    [t1, t2] = defaults;
  }

  const out: Lease = {
    address: m.yiaddr,
    prefixLength,
    subnetMask: m.subnetMask,
    dns: [...(m.dns ?? [])],
    leaseSeconds: lease,
    renewalSeconds: t1,
    rebindingSeconds: t2,
    serverId: m.serverId,
  };
  if (m.routers?.[0] !== undefined) out.gateway = m.routers[0];
  if (m.domain !== undefined) out.domain = m.domain;
  if (timersAdjusted !== undefined) out.timersAdjusted = timersAdjusted;
  return out;
}
