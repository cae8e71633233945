import { CONFIG_SCHEMA, ConfigError, type RelayConfig } from './config.schema.js';

/**
 * Reads and validates every key of the schema. A bad value throws a ConfigError whose message is
 * one line naming the variable, which the entry point prints before exiting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const config: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(CONFIG_SCHEMA)) {
    const raw = env[spec.env]?.trim();
    try {
      config[name] = raw === undefined || raw === '' ? spec.fallback() : spec.parse(raw);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConfigError(`Invalid ${spec.env}: ${reason}`);
    }
  }
  const loaded = config as RelayConfig;
  // Every recipient is final by DELIVERY_MAX_AGE (delivered, bounced or expired): only then may
  // its body go.
  if (loaded.spoolRetention < loaded.maxDeliveryAge) {
    throw new ConfigError(
      `Invalid ${CONFIG_SCHEMA.spoolRetention.env}: must be at least ${CONFIG_SCHEMA.maxDeliveryAge.env}, or bodies of mail still being retried are removed`,
    );
  }
  return loaded;
}

/** The README's configuration table, generated from the schema. */
export function configTableMarkdown(): string {
  const rows = Object.values(CONFIG_SCHEMA).map(
    (spec) => `| \`${spec.env}\` | ${spec.type} | ${spec.defaultText} | ${spec.description} |`,
  );
  return ['| Variable | Type | Default | Description |', '|---|---|---|---|', ...rows].join('\n');
}
