import { zoneHostnamesSuite } from './zone-hostnames-suite.js';

// Debian's 6.1 kernel in the VM guest: ipvlan L2.
zoneHostnamesSuite('ipvlan');
