import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { EVENT_LOG, type EventLog } from '@relay/event-log';

const CHECK_TIMEOUT_MS = 2000;

async function within(check: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check.then((v) => v !== false), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness for load balancers: 200 when Postgres and the event log answer, else 503. */
@Controller()
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
  ) {}

  @Get('health')
  async health(@Res({ passthrough: true }) res: Response): Promise<{ status: string; checks: object }> {
    const [postgres, eventLog] = await Promise.all([
      within(this.dataSource.query('SELECT 1')),
      within(this.eventLog.isHealthy()),
    ]);
    const ok = postgres && eventLog;
    res.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: ok ? 'ok' : 'unavailable', checks: { postgres, eventLog } };
  }
}
