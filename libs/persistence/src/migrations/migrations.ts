import { EventLog1764380000000 } from './1764380000000-event-log.js';
import { Spool1764380100000 } from './1764380100000-spool.js';
import { Accounts1764380200000 } from './1764380200000-accounts.js';
import { Outbox1764380300000 } from './1764380300000-outbox.js';

/** Every migration, oldest first. ESM has no directory globbing in TypeORM, so each is listed. */
export const MIGRATIONS = [
  EventLog1764380000000,
  Spool1764380100000,
  Accounts1764380200000,
  Outbox1764380300000,
];
