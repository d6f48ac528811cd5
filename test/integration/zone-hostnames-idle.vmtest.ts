import { zoneHostnamesIdleSuite } from './zone-hostnames-idle-suite.js';

// Debian's 6.1 kernel: the same 1,000 workloads (macvlan), idle.
zoneHostnamesIdleSuite({ loop: false });
