import { procMonitorSuite } from './proc-monitor-suite.js';

// Debian's 6.1 kernel in the VM guest: CAP_NET_ADMIN required, one global listener count.
procMonitorSuite('VM guest kernel');
