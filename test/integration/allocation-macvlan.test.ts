import { allocationSuite } from './allocation-suite.js';

allocationSuite({ vlan: 'macvlan', tap: 'macvtap', defaultMode: 'bridge' });
