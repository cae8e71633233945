import { afterEach } from 'vitest';
import { SmtpTestClient } from '@relay/testing';
import type { TestRelay } from './test-relay.js';

/**
 * Raw SMTP sessions for a spec file, each closed after the test that opened it, even when an
 * assertion failed halfway. Call once at the top of the file: it registers an afterEach there.
 */
export function sessionsClosedAfterEach(): {
  connect: (port: number, options?: { tls?: boolean }) => ReturnType<typeof SmtpTestClient.connect>;
  /** Closes every session opened so far, for a test that needs them gone before it goes on. */
  closeAll: () => void;
} {
  const open: SmtpTestClient[] = [];
  const closeAll = (): void => {
    for (const client of open.splice(0)) client.close();
  };
  afterEach(closeAll);
  return {
    connect: async (port, options = {}) => {
      const session = await SmtpTestClient.connect(port, options);
      open.push(session.client);
      return session;
    },
    closeAll,
  };
}

/** The reply that accepts a message; group 1 is the relay's message id. */
export const QUEUED = /^250 2\.0\.0 Ok: queued as ([0-9a-z]{9}[0-9a-f]{16})$/;

/** EHLO reply lines without the code, the greeting line dropped. */
export const capabilities = (reply: string[]): string[] => reply.slice(1).map((line) => line.slice(4));

/** The account the SMTP tests send as: it may use From addresses at example.com. */
export const SENDER = { username: 'sender', password: 'correct horse battery staple' } as const;

/** Creates SENDER on a test relay through the admin API; returns its account id. */
export async function createSenderAccount(relay: TestRelay): Promise<string> {
  const created = await relay.admin('POST', '/v1/accounts', {
    name: 'Sender',
    ...SENDER,
    allowedFrom: ['@example.com'],
  });
  if (created.status !== 201 || !created.body.id) {
    throw new Error(`could not create the sender account: ${created.status} ${JSON.stringify(created.body)}`);
  }
  return created.body.id;
}
