import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import type { Logger, RelayConfig } from '@relay/config';

export interface TlsCredentials {
  readonly key: Buffer;
  readonly cert: Buffer;
  /** Where they came from, for the start-up summary. */
  readonly source: string;
}

/**
 * The certificate for STARTTLS and implicit TLS: TLS_CERT_FILE/TLS_KEY_FILE when set, else a
 * self-signed one generated once under the data directory and reused (never smtp-server's
 * built-in test key, whose private half is public).
 */
export async function loadTlsCredentials(config: RelayConfig, logger: Logger): Promise<TlsCredentials> {
  if (config.tlsCertFile || config.tlsKeyFile) {
    if (!config.tlsCertFile || !config.tlsKeyFile) {
      throw new Error('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
    }
    return {
      cert: await readFile(config.tlsCertFile),
      key: await readFile(config.tlsKeyFile),
      source: config.tlsCertFile,
    };
  }
  const dir = join(config.dataDir, 'tls');
  const certFile = join(dir, 'self-signed-cert.pem');
  const keyFile = join(dir, 'self-signed-key.pem');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    await mkdir(dir, { recursive: true });
    const pems = await generate([{ name: 'commonName', value: config.hostname }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 10 * 365 * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: config.hostname },
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    await writeFile(keyFile, pems.private, { mode: 0o600 });
    await writeFile(certFile, pems.cert);
    logger.info('generated a self-signed TLS certificate', { certFile });
  }
  return {
    cert: await readFile(certFile),
    key: await readFile(keyFile),
    source: `${certFile} (self-signed)`,
  };
}
