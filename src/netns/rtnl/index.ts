export * from './constants.js';
export * from './policy.js';
export * from './link.js';
export * from './address.js';
export * from './route.js';
export * from './nsid.js';
export * from './inet.js';
export * from './kinds/index.js';
