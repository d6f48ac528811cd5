import { mdnsHostileSuite } from './mdns-hostile-suite.js';

// Debian's 6.1 kernel in the VM guest: ipvlan L2, whose devices share the uplink's MAC.
mdnsHostileSuite('ipvlan');
