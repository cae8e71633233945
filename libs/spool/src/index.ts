export * from './spool.port.js';
export * from './local-directory-spool.adapter.js';
export * from './postgres-spool.adapter.js';
