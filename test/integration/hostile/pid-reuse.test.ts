import { pidReuseSuite } from './pid-reuse-suite.js';

// The host kernel (6.18 here) has no ipvlan: macvlan takes the same namespace path.
pidReuseSuite('macvlan');
