import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Server } from 'node:http';
import { AdminApiModule, ensureAdminToken, setupOpenApi } from '@relay/admin-api';
import type { Logger, RelayConfig } from '@relay/config';
import { bootstrapDemoAccount } from '@relay/persistence';
import { ProjectorModule, ProjectorService } from '@relay/projector';
import { SmtpIngressModule, SmtpIngressService } from '@relay/smtp-ingress';
import { TrackerModule } from '@relay/tracker';
import { BounceIntakeService, WorkerModule } from '@relay/worker';
import { RuntimeModule } from './runtime.module.js';
import { startRuntime, type Runtime } from './runtime.js';

export interface RunningRelay {
  /** Lines for the console: where everything listens, and first-start credentials. */
  describe(): string[];
  /** The SMTP listeners (ports resolved when configured as 0). */
  smtpListeners(): { port: number; implicitTls: boolean }[];
  /** Base URL of the admin API, when this process runs it. */
  adminUrl(): string | undefined;
  stop(): Promise<void>;
}

const withRuntime = <M>(module: M, runtime: Runtime) => ({
  module,
  imports: [RuntimeModule.forRoot(runtime)],
});

/**
 * Starts the roles of RELAY_ROLES in this process on one shared runtime, each as its own Nest
 * application: consumers first (worker), then the edges (admin API, SMTP); they stop in the
 * reverse order, so nothing is accepted that the rest can no longer handle.
 */
export async function startRelay(config: RelayConfig, logger: Logger): Promise<RunningRelay> {
  const runtime = await startRuntime(config, logger);
  const apps: INestApplicationContext[] = [];
  const lines = [...runtime.summary];
  let ingress: SmtpIngressService | undefined;
  let adminUrl: string | undefined;
  const context = async (module: unknown): Promise<INestApplicationContext> => {
    const app = await NestFactory.createApplicationContext(withRuntime(module, runtime), { logger: false });
    await app.init();
    apps.push(app);
    return app;
  };
  try {
    if (config.roles.includes('worker')) {
      const worker = await context(WorkerModule);
      const smartHost = config.deliverySmartHost;
      lines.push(
        `worker:     policy and delivery ${smartHost ? `via smart host ${smartHost.host}:${smartHost.port}` : 'to MX hosts'}`,
        `bounces:    ${config.listenHost}:${worker.get(BounceIntakeService).port()} for bounces+*@${config.bounceDomain ?? config.hostname}`,
      );
    }
    if (config.roles.includes('projector')) {
      const projector = (await context(ProjectorModule)).get(ProjectorService);
      lines.push(`projector:  ${projector.groups().join(', ')}`);
    }
    if (config.roles.includes('admin-api')) {
      const token = await ensureAdminToken(config.dataDir, config.adminToken);
      const admin = await NestFactory.create<NestExpressApplication>(withRuntime(AdminApiModule, runtime), {
        logger: false,
      });
      // Bulk suppression adds: 10 000 addresses of up to 254 characters.
      admin.useBodyParser('json', { limit: '3mb' });
      setupOpenApi(admin);
      await admin.listen(config.adminPort, config.listenHost);
      apps.push(admin);
      adminUrl = `http://127.0.0.1:${boundPort(admin, config.adminPort)}`;
      lines.push(`admin API:  ${adminUrl}  (OpenAPI at /docs, /health, /metrics)`);
      if (token.source === 'generated')
        lines.push(`admin token (generated, kept in ${token.file}): ${token.token}`);
      const demo = await bootstrapDemoAccount(runtime.dataSource);
      if (demo) lines.push(`demo account created: username ${demo.username}  password ${demo.password}`);
    }
    if (config.roles.includes('tracker')) {
      const tracker: INestApplication = await NestFactory.create(withRuntime(TrackerModule, runtime), {
        logger: false,
      });
      await tracker.listen(config.trackerPort, config.listenHost);
      apps.push(tracker);
      lines.push(
        `tracker:    http://${config.listenHost}:${boundPort(tracker, config.trackerPort)}  (links: ${config.trackingBaseUrl})`,
      );
    }
    if (config.roles.includes('smtp-ingress')) {
      const smtp = (await context(SmtpIngressModule)).get(SmtpIngressService);
      ingress = smtp;
      for (const listener of smtp.listening()) {
        lines.push(
          `SMTP:       ${config.listenHost}:${listener.port} ${listener.implicitTls ? '(implicit TLS)' : '(STARTTLS offered)'}`,
        );
      }
      lines.push(`TLS:        ${smtp.tlsSource() ?? 'none'}`);
    }
  } catch (error) {
    for (const app of apps.reverse()) await app.close();
    await runtime.stop();
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    describe: () => lines,
    smtpListeners: () => ingress?.listening() ?? [],
    adminUrl: () => adminUrl,
    stop: () => {
      stopped ??= (async () => {
        for (const app of [...apps].reverse()) await app.close();
        await runtime.stop();
      })();
      return stopped;
    },
  };
}

function boundPort(app: INestApplication, configured: number): number {
  const address = (app.getHttpServer() as Server).address();
  return typeof address === 'object' && address !== null && 'port' in address
    ? Number(address.port)
    : configured;
}
