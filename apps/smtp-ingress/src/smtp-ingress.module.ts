import { Module } from '@nestjs/common';
import { AccountsRepository } from '@relay/persistence';
import { MessageIntake } from './intake/message-intake.js';
import { SENDER_DIRECTORY } from './smtp/sender-directory.port.js';
import { SmtpIngressService } from './smtp/smtp-ingress.service.js';

/**
 * The SMTP edge. Needs the global runtime providers: config, logger, event log, spool, DataSource
 * (with the account entities).
 */
@Module({
  providers: [
    AccountsRepository,
    { provide: SENDER_DIRECTORY, useExisting: AccountsRepository },
    MessageIntake,
    SmtpIngressService,
  ],
  exports: [SmtpIngressService],
})
export class SmtpIngressModule {}
