import { siegeSuite } from './siege-suite.js';

// The host kernel: macvlan and macvtap.
siegeSuite('macvlan');
