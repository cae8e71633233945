export * from './test-database.js';
export * from './kafka-broker.js';
export * from './smtp-test-client.js';
export * from './capture-mx.js';
export * from './dns-test-server.js';
export * from './refused-port.js';
