import { EventLog1764380000000 } from './1764380000000-event-log.js';
import { Spool1764380100000 } from './1764380100000-spool.js';
import { Accounts1764380200000 } from './1764380200000-accounts.js';
import { Outbox1764380300000 } from './1764380300000-outbox.js';
import { DeliveryReports1764380400000 } from './1764380400000-delivery-reports.js';
import { ProjectionPositions1764380500000 } from './1764380500000-projection-positions.js';
import { DeliveryQueue1764380600000 } from './1764380600000-delivery-queue.js';
import { Suppressions1764380700000 } from './1764380700000-suppressions.js';
import { DeliveryReturnPath1764380800000 } from './1764380800000-delivery-return-path.js';
import { Notifications1764380900000 } from './1764380900000-notifications.js';
import { PolicyUsage1764381000000 } from './1764381000000-policy-usage.js';
import { QuotaUsage1764381100000 } from './1764381100000-quota-usage.js';
import { Resends1764381200000 } from './1764381200000-resends.js';
import { AccountDkimKeys1764381300000 } from './1764381300000-account-dkim-keys.js';

/** Every migration, oldest first. ESM has no directory globbing in TypeORM, so each is listed. */
export const MIGRATIONS = [
  EventLog1764380000000,
  Spool1764380100000,
  Accounts1764380200000,
  Outbox1764380300000,
  DeliveryReports1764380400000,
  ProjectionPositions1764380500000,
  DeliveryQueue1764380600000,
  Suppressions1764380700000,
  DeliveryReturnPath1764380800000,
  Notifications1764380900000,
  PolicyUsage1764381000000,
  QuotaUsage1764381100000,
  Resends1764381200000,
  AccountDkimKeys1764381300000,
];
