import { procMonitorSuite } from './proc-monitor-suite.js';

// The host kernel (6.18 here: unprivileged subscriptions, per-socket filters).
procMonitorSuite('host kernel');
