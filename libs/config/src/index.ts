export * from './config.schema.js';
export * from './load-config.js';
export * from './logger.js';
export * from './tokens.js';
export * from './metrics.js';
export * from './secret-file.js';
