import { mdnsHostileSuite } from './mdns-hostile-suite.js';

// The host kernel: macvlan.
mdnsHostileSuite('macvlan');
