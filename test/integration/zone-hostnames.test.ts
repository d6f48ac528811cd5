import { zoneHostnamesSuite } from './zone-hostnames-suite.js';

// The host kernel: macvlan.
zoneHostnamesSuite('macvlan');
