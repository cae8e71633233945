import { setTimeout as sleep } from 'node:timers/promises';
import { type DynamicModule, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, LOGGER } from '@relay/config';
import { createEvent, type RelayEvent } from '@relay/domain';
import { EVENT_LOG, PostgresEventLog } from '@relay/event-log';
import { createDataSource, DeliveryReportsRepository, SuppressionsRepository } from '@relay/persistence';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { ProjectorModule } from './projector.module.js';
import { ProjectorService } from './projector.service.js';

const ACCOUNT_ID = '0b8a6f4e-1d2c-4e3f-8a9b-7c6d5e4f3a21';

/** What apps/relay's RuntimeModule provides globally, built from test parts. */
@Module({})
class TestRuntimeModule {
  static forRoot(deps: { dataSource: DataSource; eventLog: PostgresEventLog }): DynamicModule {
    return {
      module: TestRuntimeModule,
      global: true,
      providers: [
        { provide: LOGGER, useValue: createLogger('error', {}, () => undefined) },
        { provide: EVENT_LOG, useValue: deps.eventLog },
        { provide: DataSource, useValue: deps.dataSource },
      ],
      exports: [LOGGER, EVENT_LOG, DataSource],
    };
  }
}

const received = (messageId: string): RelayEvent =>
  createEvent('MessageReceived', {
    accountId: ACCOUNT_ID,
    messageId,
    data: {
      mailFrom: 'app@example.com',
      recipients: ['ada@example.org'],
      from: 'app@example.com',
      headerMessageId: `${messageId}@example.com`,
      size: 812,
      spoolKey: `spool/${messageId}`,
      clientIp: '127.0.0.1',
      auth: 'ip-allow-list',
      tls: false,
      smtpUtf8: false,
      eightBitMime: false,
    },
  });

const listed = (address: string): RelayEvent =>
  createEvent('SuppressionAdded', {
    accountId: ACCOUNT_ID,
    data: { address, list: 'bounce', source: 'bounce', reason: '550 5.1.1 user unknown' },
  });

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

let db: TestDatabase;
let dataSource: DataSource;
let eventLog: PostgresEventLog;
let reports: DeliveryReportsRepository;
let suppressions: SuppressionsRepository;

beforeAll(async () => {
  db = await createTestDatabase('projector_module');
  dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
  eventLog = await PostgresEventLog.connect({
    url: db.url,
    pollIntervalMs: 50,
    logger: createLogger('error', {}, () => undefined),
  });
  reports = new DeliveryReportsRepository(dataSource);
  suppressions = new SuppressionsRepository(dataSource);
});

afterAll(async () => {
  await eventLog?.close();
  await dataSource?.destroy();
  await db?.drop();
});

describe('ProjectorModule', () => {
  it('projects delivery reports and suppression lists from bootstrap until shutdown', async () => {
    await eventLog.append([received('before-start'), listed('early@example.org')]);
    const context: INestApplicationContext = await NestFactory.createApplicationContext(
      { module: ProjectorModule, imports: [TestRuntimeModule.forRoot({ dataSource, eventLog })] },
      { logger: false },
    );
    await context.init();
    expect(context.get(ProjectorService).groups()).toEqual([
      'projection-delivery-report',
      'projection-suppressions',
      'projection-quota',
      'projection-resend-progress',
    ]);

    await until(async () => (await reports.get('before-start')) !== undefined, 'the earlier message');
    await until(
      async () => (await suppressions.isListed(ACCOUNT_ID, ['early@example.org'])).size === 1,
      'the earlier listing',
    );
    await eventLog.append([received('while-running'), listed('later@example.org')]);
    await until(async () => (await reports.get('while-running'))?.status === 'queued', 'the new message');
    await until(
      async () => (await suppressions.isListed(ACCOUNT_ID, ['later@example.org'])).size === 1,
      'the new listing',
    );

    await context.close();
    expect(context.get(ProjectorService).groups()).toEqual([]);
    await eventLog.append([received('after-stop'), listed('after-stop@example.org')]);
    await sleep(500);
    expect(await reports.get('after-stop')).toBeUndefined();
    expect(await suppressions.isListed(ACCOUNT_ID, ['after-stop@example.org'])).toEqual(new Map());
  });
});
