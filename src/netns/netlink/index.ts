export * from './constants.js';
export * from './flags.js';
export * from './errors.js';
export * from './message.js';
export * from './attribute.js';
export * from './policy.js';
export * from './ack.js';
export * from './collector.js';
