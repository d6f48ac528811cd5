import { allocationSuite } from './allocation-suite.js';

allocationSuite({ vlan: 'ipvlan', tap: 'ipvtap', defaultMode: 'l2' });
