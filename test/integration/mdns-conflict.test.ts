import { mdnsConflictSuite } from './mdns-conflict-suite.js';

// The host kernel: macvlan.
mdnsConflictSuite('macvlan');
