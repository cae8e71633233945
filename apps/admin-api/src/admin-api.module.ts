import { Module } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { RELAY_CONFIG, type RelayConfig } from '@relay/config';
import { AccountsRepository, DeliveryReportsRepository } from '@relay/persistence';
import { SuppressionsRepository } from '@relay/persistence';
import { QuotaUsageRepository } from '@relay/persistence';
import { ResendsRepository } from '@relay/persistence';
import { AccountsController } from './accounts/accounts.controller.js';
import { ADMIN_TOKEN, AdminTokenGuard } from './auth/admin-token.guard.js';
import { ensureAdminToken } from './auth/admin-token.js';
import { HealthController } from './health/health.controller.js';
import { MessagesController } from './messages/messages.controller.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { ProjectionsController } from './projections/projections.controller.js';
import { RequestResendHandler } from './resends/request-resend.handler.js';
import { ResendsController } from './resends/resends.controller.js';
import { AddSuppressionsHandler } from './suppressions/add-suppressions.handler.js';
import { RemoveSuppressionHandler } from './suppressions/remove-suppression.handler.js';
import { SuppressionsController } from './suppressions/suppressions.controller.js';
import { UsageController } from './usage/usage.controller.js';
import { createValidationPipe } from './validation.js';

/**
 * The support agents' HTTP API (ADMIN_PORT): accounts, lists, reports, resends, health, metrics.
 * Needs the process-wide DataSource (with ACCOUNT_ENTITIES), RELAY_CONFIG and LOGGER.
 */
@Module({
  controllers: [
    HealthController,
    MetricsController,
    AccountsController,
    MessagesController,
    SuppressionsController,
    UsageController,
    ProjectionsController,
    ResendsController,
  ],
  providers: [
    AccountsRepository,
    DeliveryReportsRepository,
    SuppressionsRepository,
    QuotaUsageRepository,
    AddSuppressionsHandler,
    RemoveSuppressionHandler,
    ResendsRepository,
    RequestResendHandler,
    AdminTokenGuard,
    {
      provide: ADMIN_TOKEN,
      inject: [RELAY_CONFIG],
      useFactory: async (config: RelayConfig): Promise<string> =>
        (await ensureAdminToken(config.dataDir, config.adminToken)).token,
    },
    { provide: APP_PIPE, useFactory: createValidationPipe },
  ],
})
export class AdminApiModule {}
