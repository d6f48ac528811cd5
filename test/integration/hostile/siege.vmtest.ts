import { siegeSuite } from './siege-suite.js';

// Debian's 6.1 kernel in the VM guest: ipvlan and ipvtap, the family the host kernel lacks.
siegeSuite('ipvlan');
