import { ipvlanCodec } from './ipvlan.js';
import { macvlanCodec } from './macvlan.js';
import { registerLinkKind } from './registry.js';
import { vethCodec } from './veth.js';

registerLinkKind(ipvlanCodec);
registerLinkKind(macvlanCodec);
registerLinkKind(vethCodec);

export { linkKindCodec, registerLinkKind, registeredKinds, type LinkKindCodec } from './registry.js';
export { ipvlanCodec, ipvlanPolicy, IFLA_IPVLAN } from './ipvlan.js';
export { macvlanCodec, macvlanPolicy, IFLA_MACVLAN } from './macvlan.js';
export { vethCodec, vethPolicy, VETH_INFO } from './veth.js';
