import type { DecodedAttrs, Policy, PolicyEncoder } from '../../netlink/policy.js';
import type { LinkKindData } from '../../types.js';

/**
 * One codec per link kind (jsimonetti/rtnetlink driver/, iproute2 ip/iplink_<kind>.c): how a kind's
 * LinkKindData becomes IFLA_INFO_DATA and back. A codec may serve several kinds (ipvlan + ipvtap).
 */
export interface LinkKindCodec {
  readonly kinds: readonly LinkKindData['kind'][];
  /** The attribute space inside IFLA_INFO_DATA. */
  readonly policy: Policy;
  /** Fills IFLA_INFO_DATA (encoder bound to `policy`). */
  encode(data: LinkKindData, e: PolicyEncoder): void;
  /** IFLA_INFO_DATA as reported (undefined when the kernel sent none). Undefined if not understood. */
  decode(kind: string, data: DecodedAttrs | undefined): LinkKindData | undefined;
}

const codecs = new Map<string, LinkKindCodec>();

export function registerLinkKind(codec: LinkKindCodec): void {
  for (const k of codec.kinds) codecs.set(k, codec);
}

export function linkKindCodec(kind: string): LinkKindCodec | undefined {
  return codecs.get(kind);
}

export function registeredKinds(): string[] {
  return [...codecs.keys()];
}
