export * from './verp.js';
export * from './mx-router.js';
export * from './outbound-pool.js';
export * from './smtp-transaction.js';
export * from './retry-schedule.js';
export * from './delivery-outcome.decide.js';
export * from './bounce-classifier.js';
export * from './dsn-parser.js';
