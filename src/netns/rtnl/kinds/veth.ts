import { Policy } from '../../netlink/policy.js';
import { IFINFOMSG_LEN, IFLA } from '../constants.js';
import { linkPolicy } from '../policy.js';
import type { LinkKindData } from '../../types.js';
import type { LinkKindCodec } from './registry.js';

/** linux/veth.h: VETH_INFO_PEER carries a struct ifinfomsg then IFLA_* attributes of the peer. */
export const VETH_INFO = { PEER: 1 } as const;

export const vethPolicy = new Policy('VETH_INFO', {
  [VETH_INFO.PEER]: ['VETH_INFO_PEER', 'nested', linkPolicy, IFINFOMSG_LEN],
});

export const vethCodec: LinkKindCodec = {
  kinds: ['veth'],
  policy: vethPolicy,
  encode(data, e) {
    if (data.kind !== 'veth') throw new TypeError(`veth codec given ${data.kind}`);
    if (data.peerName === undefined) return;
    const peerName = data.peerName;
    e.nest(VETH_INFO.PEER, (p) => { p.put(IFLA.IFNAME, peerName); }, { header: new Uint8Array(IFINFOMSG_LEN) });
  },
  decode(kind, data): LinkKindData | undefined {
    if (kind !== 'veth') return undefined;
    // The kernel reports no IFLA_INFO_DATA for veth; a peer name appears only in what we encoded.
    const peerName = data?.nested(VETH_INFO.PEER)?.string(IFLA.IFNAME);
    return peerName === undefined ? { kind: 'veth' } : { kind: 'veth', peerName };
  },
};
