export * from './event-log.port.js';
export * from './postgres/postgres-event-log.adapter.js';
export * from './kafka/kafka-event-log.adapter.js';
