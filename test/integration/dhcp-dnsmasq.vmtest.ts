import { dhcpSuite } from './dhcp-suite.js';

// ipvlan L2: every device has the uplink's MAC; only the client identifier tells them apart.
// Under TCG a lease took 0.6-2 s (the client's first retransmission is at 2 s).
dhcpSuite({ type: 'ipvlan', family: 'ipvlan', leaseMs: 8000, timeoutSeconds: 20 });
