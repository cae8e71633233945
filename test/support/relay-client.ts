import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import type { EventOfType, EventType } from '@relay/domain';
import type { EventLog } from '@relay/event-log';

/** Submits raw bytes through the relay as an authenticated client; returns the relay's message id. */
export async function submitRaw(
  port: number,
  auth: { user: string; pass: string },
  envelope: { from: string; to: string[] },
  raw: string,
): Promise<string> {
  const sender = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth,
  });
  try {
    const info = await sender.sendMail({ envelope, raw });
    const id = /queued as (\S+)$/.exec(info.response)?.[1];
    if (!id) throw new Error(`unexpected reply ${info.response}`);
    return id;
  } finally {
    sender.close();
  }
}

/** Events of one type from the last hour, optionally of one message. */
export async function eventsOf<T extends EventType>(
  log: EventLog,
  type: T,
  messageId?: string,
): Promise<EventOfType<T>[]> {
  const out: EventOfType<T>[] = [];
  const range = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000), types: [type] };
  for await (const { event } of log.readRange(range)) {
    if (!messageId || event.messageId === messageId) out.push(event as EventOfType<T>);
  }
  return out;
}

/** Polls `probe` until it returns a value; bounded. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
