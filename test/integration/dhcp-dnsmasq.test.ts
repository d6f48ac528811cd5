import { dhcpSuite } from './dhcp-suite.js';

dhcpSuite({ type: 'macvlan', family: 'macvlan', leaseMs: 3000, timeoutSeconds: 5 });
