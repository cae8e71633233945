import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { collectDefaultMetrics } from 'prom-client';
import { metricsRegistry } from '@relay/config';

let defaultsCollected = false;

/** Prometheus scrape endpoint: every metric of this process (all roles share one registry). */
@ApiExcludeController()
@Controller()
export class MetricsController {
  constructor() {
    if (!defaultsCollected) {
      defaultsCollected = true;
      collectDefaultMetrics({ register: metricsRegistry, prefix: 'relay_' });
    }
  }

  @Get('metrics')
  @Header('Content-Type', metricsRegistry.contentType)
  async metrics(): Promise<string> {
    return metricsRegistry.metrics();
  }
}
