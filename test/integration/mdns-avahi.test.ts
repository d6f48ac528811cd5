import { mdnsAvahiSuite } from './mdns-avahi-suite.js';

// The host kernel: macvlan.
mdnsAvahiSuite('macvlan');
