import { Policy } from '../../netlink/policy.js';
import type { IpvlanFlag, IpvlanMode, LinkKindData } from '../../types.js';
import type { LinkKindCodec } from './registry.js';

/** linux/if_link.h: IFLA_IPVLAN_*; both are u16 (ipvlan_nl_policy), not u32. */
export const IFLA_IPVLAN = { MODE: 1, FLAGS: 2 } as const;

const MODES: Record<IpvlanMode, number> = { l2: 0, l3: 1, l3s: 2 };
/** IPVLAN_F_PRIVATE 0x01, IPVLAN_F_VEPA 0x02; neither = bridge. */
const FLAGS: Record<IpvlanFlag, number> = { bridge: 0, private: 1, vepa: 2 };

export const ipvlanPolicy = new Policy('IFLA_IPVLAN', {
  [IFLA_IPVLAN.MODE]: ['IFLA_IPVLAN_MODE', 'u16'],
  [IFLA_IPVLAN.FLAGS]: ['IFLA_IPVLAN_FLAGS', 'u16'],
});

function byValue<K extends string>(table: Record<K, number>, v: number): K | undefined {
  for (const [k, n] of Object.entries(table) as Array<[K, number]>) if (n === v) return k;
  return undefined;
}

export const ipvlanCodec: LinkKindCodec = {
  kinds: ['ipvlan', 'ipvtap'],
  policy: ipvlanPolicy,
  encode(data, e) {
    if (data.kind !== 'ipvlan' && data.kind !== 'ipvtap') throw new TypeError(`ipvlan codec given ${data.kind}`);
    e.put(IFLA_IPVLAN.MODE, MODES[data.mode]).put(IFLA_IPVLAN.FLAGS, FLAGS[data.flag]);
  },
  decode(kind, data): LinkKindData | undefined {
    if (kind !== 'ipvlan' && kind !== 'ipvtap') return undefined;
    const mode = byValue(MODES, data?.number(IFLA_IPVLAN.MODE) ?? 0);
    const flag = byValue(FLAGS, data?.number(IFLA_IPVLAN.FLAGS) ?? 0);
    if (mode === undefined || flag === undefined) return undefined;
    return { kind, mode, flag };
  },
};
