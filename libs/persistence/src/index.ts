export * from './data-source.js';
export * from './embedded-postgres.js';
export * from './accounts/account.entity.js';
export * from './accounts/accounts.repository.js';
export * from './accounts/demo-account.js';
export { normaliseClientIp, parseCidr, type CidrParse } from './accounts/ip-address.js';
export { hashPassword, verifyPassword } from './accounts/password-hash.js';
export * from './outbox/outbox.js';
export * from './outbox/outbox-relay.js';
