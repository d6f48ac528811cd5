import { pidReuseSuite } from './pid-reuse-suite.js';

// Debian's 6.1 kernel in the VM guest: ipvlan, the type the host kernel lacks.
pidReuseSuite('ipvlan');
