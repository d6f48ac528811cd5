/**
 * A scripted kernel for ontap-zone's unit tests, on FakeKernel: namespaces (by nsid) with links and
 * addresses that answer link, address and nsid dumps the way the kernel does (records stamped with
 * our seq and port id, target nsid echoed, NLMSG_DONE), and notifications pushed like the kernel's
 * (nlmsg_pid is the originator's port id, never ours), with the nsid in the control message.
 */
import { done, FakeKernel, message, errorMessage } from '../fixtures/netlink/fake-kernel.js';
import { HeaderFlag, PolicyEncoder, decodeAttrs, type NetlinkMessage } from '../../src/netns/netlink/index.js';
import { AF, IFA, IFLA, NETNSA, RTM, addrPolicy, encodeIfAddr, encodeIfInfo, linkPolicy, nsidPolicy, IFADDRMSG_LEN, IFINFOMSG_LEN } from '../../src/netns/rtnl/index.js';
import { parseAddress } from '../../src/ontap-zone/classify.js';

/** `up` (default true): IFF_UP; `running` (default: as up): IFF_RUNNING, the carrier an up link reports. */
export interface FakeLink { ifindex: number; ifname: string; alias?: string; up?: boolean; running?: boolean }

export function fakeLinkFlags(l: FakeLink): number {
  const up = l.up !== false;
  return (up ? 0x1 : 0) | (up && l.running !== false ? 0x40 : 0);
}
export interface FakeAddress { ifindex: number; family: 4 | 6; address: string; prefixLength?: number; flags?: number; scope?: number }

export function linkPayload(l: FakeLink, targetNsid?: number): Buffer {
  const e = new PolicyEncoder(linkPolicy);
  e.put(IFLA.IFNAME, l.ifname);
  if (l.alias !== undefined) e.put(IFLA.IFALIAS, l.alias);
  e.maybe(IFLA.TARGET_NETNSID, targetNsid);
  return Buffer.concat([encodeIfInfo({ index: l.ifindex, flags: fakeLinkFlags(l) }), e.encode()]);
}

export function addressPayload(a: FakeAddress, targetNsid?: number): Buffer {
  const bytes = parseAddress(a.family, a.address);
  if (!bytes) throw new Error(`bad address ${a.address}`);
  const e = new PolicyEncoder(addrPolicy);
  e.put(IFA.ADDRESS, bytes);
  e.put(IFA.LOCAL, bytes);
  e.put(IFA.FLAGS, a.flags ?? 0x80);
  e.maybe(IFA.TARGET_NETNSID, targetNsid);
  return Buffer.concat([encodeIfAddr({ family: a.family === 4 ? AF.INET : AF.INET6, prefixlen: a.prefixLength ?? (a.family === 4 ? 24 : 64), flags: (a.flags ?? 0x80) & 0xff, scope: a.scope ?? 0, index: a.ifindex }), e.encode()]);
}

export function nsidPayload(nsid: number): Buffer {
  return Buffer.concat([Buffer.alloc(4), new PolicyEncoder(nsidPolicy).put(NETNSA.NSID, nsid).encode()]);
}

/** Another process's port id: what notifications carry in nlmsg_pid (the originator's). */
const ORIGINATOR = 777;

export interface NsState { links: Map<number, FakeLink>; addresses: Map<string, FakeAddress> }

export class ZoneKernel {
  readonly k = new FakeKernel();
  readonly namespaces = new Map<number, NsState>();
  /** Called before a dump's records are queued: lets a test push notifications "during" it. */
  beforeReply: ((what: 'links' | 'addresses' | 'nsids', nsid: number | undefined) => void) | undefined;
  /** Dumps to answer with NLM_F_DUMP_INTR (counted down). */
  interruptNext = 0;
  /** Linux 6.18's cut-short nsid dump: answer with at most this many nsids (ascending), then DONE. */
  nsidDumpLimit = Infinity;
  /** Dumps answered so far, as "links 3", "addresses 3", "nsids". */
  readonly dumps: string[] = [];
  fd = -1;

  constructor() {
    this.k.handler = (msg, k, fd) => this.answer(msg, k.portOf(fd));
  }

  ns(nsid: number): NsState {
    let s = this.namespaces.get(nsid);
    if (!s) this.namespaces.set(nsid, (s = { links: new Map(), addresses: new Map() }));
    return s;
  }

  private answer(msg: NetlinkMessage, port: number): Buffer[] {
    const seq = msg.header.seq;
    const flags = HeaderFlag.multi | (this.interruptNext > 0 ? HeaderFlag.dumpIntr : 0);
    const records: Buffer[] = [];
    let what: 'links' | 'addresses' | 'nsids';
    let target: number | undefined;
    if (msg.header.type === RTM.GETNSID) {
      what = 'nsids';
    } else {
      const base = msg.header.type === RTM.GETLINK ? IFINFOMSG_LEN : IFADDRMSG_LEN;
      const attrs = decodeAttrs(msg.payload, msg.header.type === RTM.GETLINK ? linkPolicy : addrPolicy, base, msg.payload.length);
      target = attrs.number(msg.header.type === RTM.GETLINK ? IFLA.TARGET_NETNSID : IFA.TARGET_NETNSID);
      what = msg.header.type === RTM.GETLINK ? 'links' : 'addresses';
    }
    this.dumps.push(what === 'nsids' ? 'nsids' : `${what} ${target}`);
    this.beforeReply?.(what, target);
    if (what !== 'nsids' && (target === undefined || !this.namespaces.has(target))) {
      return [errorMessage(msg, port, 22, 'Invalid target network namespace id')];
    }
    if (this.interruptNext > 0) this.interruptNext--;
    if (what === 'nsids') {
      for (const nsid of [...this.namespaces.keys()].sort((a, b) => a - b).slice(0, this.nsidDumpLimit)) records.push(message(RTM.NEWNSID, flags, seq, port, nsidPayload(nsid)));
    } else if (what === 'links') {
      for (const l of this.ns(target!).links.values()) records.push(message(RTM.NEWLINK, flags, seq, port, linkPayload(l, target)));
    } else {
      for (const a of this.ns(target!).addresses.values()) records.push(message(RTM.NEWADDR, flags, seq, port, addressPayload(a, target)));
    }
    return [Buffer.concat(records.length > 0 ? records : [Buffer.alloc(0)]), (done as (seq: number, pid: number, flags: number) => Buffer)(seq, port, flags)].filter((b) => b.length > 0);
  }

  private notify(type: number, payload: Buffer, nsid: number | undefined): void {
    this.k.push(this.fd, { data: message(type, 0, 1, ORIGINATOR, payload), nsid });
  }

  addNamespace(nsid: number, notify = true): void {
    this.ns(nsid);
    if (notify) this.notify(RTM.NEWNSID, nsidPayload(nsid), undefined);
  }

  delNamespace(nsid: number, notify = true): void {
    this.namespaces.delete(nsid);
    if (notify) this.notify(RTM.DELNSID, nsidPayload(nsid), undefined);
  }

  setLink(nsid: number, l: FakeLink, notify = true): void {
    this.ns(nsid).links.set(l.ifindex, l);
    if (notify) this.notify(RTM.NEWLINK, linkPayload(l), nsid);
  }

  delLink(nsid: number, ifindex: number, notify = true): void {
    const s = this.ns(nsid);
    const l = s.links.get(ifindex);
    s.links.delete(ifindex);
    for (const [k, a] of s.addresses) if (a.ifindex === ifindex) s.addresses.delete(k);
    if (notify && l) this.notify(RTM.DELLINK, linkPayload(l), nsid);
  }

  setAddress(nsid: number, a: FakeAddress, notify = true): void {
    this.ns(nsid).addresses.set(`${a.ifindex} ${a.address}`, a);
    if (notify) this.notify(RTM.NEWADDR, addressPayload(a), nsid);
  }

  delAddress(nsid: number, a: FakeAddress, notify = true): void {
    this.ns(nsid).addresses.delete(`${a.ifindex} ${a.address}`);
    if (notify) this.notify(RTM.DELADDR, addressPayload(a), nsid);
  }

  overrun(): void {
    this.k.pushOverrun(this.fd);
  }
}

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Lets the fake kernel and the watch exchange until nothing moves (bounded). */
export async function settle(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}
