import { Policy } from '../../netlink/policy.js';
import type { LinkKindData, MacvlanMode } from '../../types.js';
import type { LinkKindCodec } from './registry.js';

/** linux/if_link.h: IFLA_MACVLAN_*. MODE is a u32 (unlike ipvlan's u16), FLAGS a u16. */
export const IFLA_MACVLAN = {
  MODE: 1,
  FLAGS: 2,
  MACADDR_MODE: 3,
  MACADDR: 4,
  MACADDR_DATA: 5,
  MACADDR_COUNT: 6,
  BC_QUEUE_LEN: 7,
  BC_QUEUE_LEN_USED: 8,
  BC_CUTOFF: 9,
} as const;

/** MACVLAN_MODE_* are bits. */
const MODES: Record<MacvlanMode, number> = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 };

export const macvlanPolicy = new Policy('IFLA_MACVLAN', {
  [IFLA_MACVLAN.MODE]: ['IFLA_MACVLAN_MODE', 'u32'],
  [IFLA_MACVLAN.FLAGS]: ['IFLA_MACVLAN_FLAGS', 'u16'],
  [IFLA_MACVLAN.MACADDR_MODE]: ['IFLA_MACVLAN_MACADDR_MODE', 'u32'],
  [IFLA_MACVLAN.MACADDR]: ['IFLA_MACVLAN_MACADDR', 'binary'],
  [IFLA_MACVLAN.MACADDR_DATA]: ['IFLA_MACVLAN_MACADDR_DATA', 'binary'],
  [IFLA_MACVLAN.MACADDR_COUNT]: ['IFLA_MACVLAN_MACADDR_COUNT', 'u32'],
  [IFLA_MACVLAN.BC_QUEUE_LEN]: ['IFLA_MACVLAN_BC_QUEUE_LEN', 'u32'],
  [IFLA_MACVLAN.BC_QUEUE_LEN_USED]: ['IFLA_MACVLAN_BC_QUEUE_LEN_USED', 'u32'],
  [IFLA_MACVLAN.BC_CUTOFF]: ['IFLA_MACVLAN_BC_CUTOFF', 's32'],
});

export const macvlanCodec: LinkKindCodec = {
  kinds: ['macvlan', 'macvtap'],
  policy: macvlanPolicy,
  encode(data, e) {
    if (data.kind !== 'macvlan' && data.kind !== 'macvtap') throw new TypeError(`macvlan codec given ${data.kind}`);
    e.put(IFLA_MACVLAN.MODE, MODES[data.mode]);
  },
  decode(kind, data): LinkKindData | undefined {
    if (kind !== 'macvlan' && kind !== 'macvtap') return undefined;
    const v = data?.number(IFLA_MACVLAN.MODE);
    // The kernel defaults to vepa when no mode was given (macvlan_common_newlink).
    const mode = v === undefined ? 'vepa' : (Object.entries(MODES) as Array<[MacvlanMode, number]>).find(([, n]) => n === v)?.[0];
    return mode === undefined ? undefined : { kind, mode };
  },
};
