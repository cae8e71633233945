import 'reflect-metadata';
import { ConfigError, createLogger, loadConfig, type RelayConfig } from '@relay/config';
import { startRelay } from './relay.js';

let config: RelayConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const logger = createLogger(config.logLevel, { service: 'relay' });
const relay = await startRelay(config, logger).catch((error: unknown) => {
  logger.error('relay failed to start', { error });
  process.exit(1);
});
for (const line of relay.describe()) console.log(line);

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info('stopping', { signal });
  relay
    .stop()
    .then(() => process.exit(0))
    .catch((error: unknown) => {
      logger.error('unclean stop', { error });
      process.exit(1);
    });
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
