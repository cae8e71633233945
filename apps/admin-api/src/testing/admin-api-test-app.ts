import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DataSource } from 'typeorm';
import { expect } from 'vitest';
import { createLogger, LOGGER, loadConfig, RELAY_CONFIG, silentLogger, type Logger } from '@relay/config';
import { EVENT_LOG, PostgresEventLog, type EventLog } from '@relay/event-log';
import {
  ACCOUNT_ENTITIES,
  createDataSource,
  OutboxRelay,
  ProjectionRunner,
  type ProjectionRunnerOptions,
} from '@relay/persistence';
import { createTestDatabase } from '@relay/testing';
import { AdminApiModule } from '../admin-api.module.js';
import { setupOpenApi } from '../openapi.js';

/**
 * Spec support for apps/admin-api's *.int.spec.ts (not exported by the app): the admin API as
 * apps/relay runs it, on a test database of its own, with as much of the rest of the relay beside
 * it as a spec needs.
 */

/** The bearer token every test app accepts. */
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';

/** The admin API appends only through the outbox and asks the log for its health; nothing reads it. */
const unusedEventLog: EventLog = {
  append: async () => undefined,
  subscribe: () => {
    throw new Error('not used by the admin API');
  },
  readRange: () => {
    throw new Error('not used by the admin API');
  },
  isHealthy: async () => true,
  close: async () => undefined,
};

/** What apps/relay's RuntimeModule provides globally, built from test parts. */
@Module({})
class TestRuntimeModule {
  static forRoot(deps: {
    dataSource: DataSource;
    eventLog: EventLog;
    dataDir: string;
    logger: Logger;
  }): DynamicModule {
    return {
      module: TestRuntimeModule,
      global: true,
      providers: [
        {
          provide: RELAY_CONFIG,
          useValue: loadConfig({ ADMIN_TOKEN: TEST_ADMIN_TOKEN, RELAY_DATA_DIR: deps.dataDir }),
        },
        { provide: LOGGER, useValue: deps.logger },
        { provide: EVENT_LOG, useValue: deps.eventLog },
        { provide: DataSource, useValue: deps.dataSource },
      ],
      exports: [RELAY_CONFIG, LOGGER, EVENT_LOG, DataSource],
    };
  }
}

/** Probes every 25 ms until `done` holds; fails after `timeoutMs`, naming `what` and the last value. */
export async function until<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(25);
  }
}

export interface AdminApiTestAppOptions {
  /** Names the test database (admin_<name>), the data directory and the accounts newAccount makes. */
  readonly name: string;
  /**
   * The event log: 'postgres' for the Postgres log in the test database (what the outbox relay
   * appends to and the projections read), or a stand-in. Default: a stand-in nothing reads.
   */
  readonly eventLog?: 'postgres' | EventLog;
  /** Moves the outbox to the event log, polling this often (ms); no outbox relay when unset. */
  readonly outboxRelayPollMs?: number;
  /** Projections kept up to date beside the API, each by a runner of its own (a projector process). */
  readonly projections?: readonly Omit<ProjectionRunnerOptions, 'log' | 'dataSource' | 'logger'>[];
  /** The API logs here at debug level; it logs nothing when unset. */
  readonly logLines?: string[];
  /** Largest JSON body the API parses (express's 100 kB when unset). */
  readonly jsonBodyLimit?: string;
}

export interface Reply<T = Record<string, unknown>> {
  readonly status: number;
  /** The body parsed when it is JSON, else {}. */
  readonly body: T;
  readonly text: string;
  readonly headers: Headers;
}

export interface RequestOptions {
  /** Sent as it is when a string, else as JSON. */
  readonly body?: unknown;
  /** The bearer token; TEST_ADMIN_TOKEN when undefined, none when null. */
  readonly token?: string | null;
  /** Of the body; application/json when unset. */
  readonly contentType?: string;
}

export interface AdminApiTestApp {
  readonly baseUrl: string;
  readonly dataSource: DataSource;
  readonly dataDir: string;
  readonly eventLog: EventLog;
  /** The runners of `projections`, in their order. */
  readonly runners: readonly ProjectionRunner[];
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: RequestOptions,
  ): Promise<Reply<T>>;
  /** Creates an account (a valid one unless `fields` say otherwise), expects 201 and returns its id. */
  newAccount(fields?: Record<string, unknown>): Promise<string>;
  /** Stops everything started and drops the database; also what a failed start does. */
  close(): Promise<void>;
}

export async function startAdminApiTestApp(options: AdminApiTestAppOptions): Promise<AdminApiTestApp> {
  const started: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of started.splice(0).reverse()) await stop();
  };
  try {
    const db = await createTestDatabase(`admin_${options.name}`);
    started.push(() => db.drop());
    const dataDir = await mkdtemp(join(tmpdir(), `relay-admin-${options.name}-`));
    started.push(() => rm(dataDir, { recursive: true, force: true }));
    // With the Postgres log, the relay and the runners work on the database too.
    const poolSize = options.eventLog === 'postgres' ? 8 : 4;
    const dataSource = await createDataSource({
      url: db.url,
      entities: ACCOUNT_ENTITIES,
      poolSize,
    }).initialize();
    started.push(() => dataSource.destroy());
    let eventLog = options.eventLog ?? unusedEventLog;
    if (eventLog === 'postgres') {
      const postgresLog = await PostgresEventLog.connect({
        url: db.url,
        pollIntervalMs: 50,
        logger: silentLogger,
      });
      started.push(() => postgresLog.close());
      eventLog = postgresLog;
    }
    const log = eventLog;
    if (options.outboxRelayPollMs !== undefined) {
      const relay = new OutboxRelay({
        url: db.url,
        append: (events) => log.append(events),
        pollIntervalMs: options.outboxRelayPollMs,
        logger: silentLogger,
      });
      relay.start();
      started.push(() => relay.stop());
    }
    const runners: ProjectionRunner[] = [];
    for (const projection of options.projections ?? []) {
      const runner = new ProjectionRunner({ ...projection, log, dataSource, logger: silentLogger });
      await runner.start();
      started.push(() => runner.stop());
      runners.push(runner);
    }
    const logLines = options.logLines;
    const logger = logLines ? createLogger('debug', {}, (line) => logLines.push(line)) : silentLogger;
    const app = await NestFactory.create<NestExpressApplication>(
      {
        module: AdminApiModule,
        imports: [TestRuntimeModule.forRoot({ dataSource, eventLog: log, dataDir, logger })],
      },
      { logger: false },
    );
    started.push(() => app.close());
    if (options.jsonBodyLimit !== undefined) app.useBodyParser('json', { limit: options.jsonBodyLimit });
    setupOpenApi(app);
    await app.listen(0, '127.0.0.1');
    const baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;

    const request = async <T = Record<string, unknown>>(
      method: string,
      path: string,
      { body, token = TEST_ADMIN_TOKEN, contentType = 'application/json' }: RequestOptions = {},
    ): Promise<Reply<T>> => {
      const headers: Record<string, string> = {};
      if (token !== null) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = contentType;
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      const json: unknown =
        (response.headers.get('content-type') ?? '').includes('json') && text ? JSON.parse(text) : {};
      return { status: response.status, body: json as T, text, headers: response.headers };
    };

    let accounts = 0;
    const newAccount = async (fields: Record<string, unknown> = {}): Promise<string> => {
      const reply = await request<{ id: string }>('POST', '/v1/accounts', {
        body: {
          name: 'Example',
          username: `${options.name}-${++accounts}`,
          password: 'a long enough password',
          allowedFrom: ['@example.com'],
          ...fields,
        },
      });
      expect(reply.status).toBe(201);
      return reply.body.id;
    };

    return { baseUrl, dataSource, dataDir, eventLog: log, runners, request, newAccount, close };
  } catch (error) {
    await close();
    throw error;
  }
}
