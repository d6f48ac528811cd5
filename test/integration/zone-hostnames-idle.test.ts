import { zoneHostnamesIdleSuite } from './zone-hostnames-idle-suite.js';

zoneHostnamesIdleSuite({ loop: true });
