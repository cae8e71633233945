import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, ConfigError } from './config.schema.js';
import { configTableMarkdown, loadConfig } from './load-config.js';

/** Table rows as trimmed cells, so Prettier's column padding does not matter. */
const cells = (table: string): string[][] =>
  table
    .trim()
    .split('\n')
    .filter((line) => !/^\|[\s|:-]+\|$/.test(line))
    .map((line) => line.split('|').map((cell) => cell.trim()));

describe('loadConfig', () => {
  it('gives every key its default when nothing is set', () => {
    const config = loadConfig({});
    expect(config.dataDir).toBe('./var');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.kafkaBrokers).toBeUndefined();
    expect(config.smtpPorts).toEqual([2525, 587, 25]);
    expect(config.smtpsPorts).toEqual([465]);
    expect(config.adminPort).toBe(8025);
    expect(config.trackerPort).toBe(8080);
    expect(config.trackingBaseUrl).toBe('http://localhost:8080');
    expect(config.deliverySmartHost).toBeUndefined();
    expect(config.maxMessageSize).toBe(31457280);
    expect(config.maxRecipients).toBe(1000);
    expect(config.spool).toBe('local');
    expect(config.roles).toEqual(['smtp-ingress', 'worker', 'projector', 'admin-api', 'tracker']);
  });

  it('parses set values', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@db:5432/relay',
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      SMTP_PORTS: '2526,2587',
      SMTPS_PORTS: '',
      DELIVERY_SMART_HOST: '127.0.0.1:2626',
      SMTP_ALLOW_PLAINTEXT_AUTH: 'yes',
      RELAY_ROLES: 'worker,projector',
      TRACKING_BASE_URL: 'https://t.example.com/',
    });
    expect(config.databaseUrl).toBe('postgres://u@db:5432/relay');
    expect(config.kafkaBrokers).toEqual(['k1:9092', 'k2:9092']);
    expect(config.smtpPorts).toEqual([2526, 2587]);
    expect(config.smtpsPorts).toEqual([465]);
    expect(config.deliverySmartHost).toEqual({ host: '127.0.0.1', port: 2626 });
    expect(config.allowPlaintextAuth).toBe(true);
    expect(config.roles).toEqual(['worker', 'projector']);
    expect(config.trackingBaseUrl).toBe('https://t.example.com');
  });

  it.each([
    ['ADMIN_PORT', 'eighty', 'Invalid ADMIN_PORT: expected a whole number, got "eighty"'],
    ['ADMIN_PORT', '70000', 'Invalid ADMIN_PORT: expected 0..65535, got 70000'],
    ['SMTP_PORTS', '25,x', 'Invalid SMTP_PORTS: expected a whole number, got "x"'],
    [
      'DATABASE_URL',
      'mysql://x/y',
      'Invalid DATABASE_URL: expected a postgres: or postgresql: URL, got "mysql://x/y"',
    ],
    ['KAFKA_BROKERS', 'localhost', 'Invalid KAFKA_BROKERS: expected host:port, got "localhost"'],
    [
      'DELIVERY_SMART_HOST',
      'mx.example',
      'Invalid DELIVERY_SMART_HOST: expected host:port, got "mx.example"',
    ],
    [
      'SMTP_ALLOW_PLAINTEXT_AUTH',
      'maybe',
      'Invalid SMTP_ALLOW_PLAINTEXT_AUTH: expected true or false, got "maybe"',
    ],
    [
      'RELAY_ROLES',
      'worker,mailer',
      'Invalid RELAY_ROLES: expected one of smtp-ingress, worker, projector, admin-api, tracker, got "mailer"',
    ],
    ['SPOOL', 's3', 'Invalid SPOOL: expected one of local, postgres, got "s3"'],
    [
      'SPOOL_RETENTION',
      '48h',
      'Invalid SPOOL_RETENTION: must be at least 72h (the resend window), got "48h"',
    ],
  ])('refuses %s=%s with one line naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new ConfigError(message));
  });

  it('keeps spooled bodies 4 days by default, and never less than DELIVERY_MAX_AGE', () => {
    expect(loadConfig({}).spoolRetention).toBe(4 * 86_400_000);
    expect(loadConfig({ SPOOL_RETENTION: '10d', DELIVERY_MAX_AGE: '7d' }).spoolRetention).toBe(
      10 * 86_400_000,
    );
    expect(() => loadConfig({ DELIVERY_MAX_AGE: '5d' })).toThrow(
      new ConfigError(
        'Invalid SPOOL_RETENTION: must be at least DELIVERY_MAX_AGE, or bodies of mail still being retried are removed',
      ),
    );
  });

  it('documents every key in the README table, generated from the schema', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const table = /<!-- config-table:start -->([\s\S]*?)<!-- config-table:end -->/.exec(readme)?.[1];
    expect(table, 'README.md is missing the config table (npm run docs:config)').toBeDefined();
    expect(cells(table ?? '')).toEqual(cells(configTableMarkdown()));
    for (const spec of Object.values(CONFIG_SCHEMA)) expect(spec.description).toMatch(/\.$/);
  });
});
