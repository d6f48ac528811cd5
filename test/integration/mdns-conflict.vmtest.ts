import { mdnsConflictSuite } from './mdns-conflict-suite.js';

// Debian's 6.1 kernel in the VM guest: ipvlan L2, whose devices share the uplink's MAC.
mdnsConflictSuite('ipvlan');
