import { randomInt } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { AccountEntity } from './account.entity.js';
import { AccountsRepository, UsernameTakenError } from './accounts.repository.js';

export interface DemoAccount {
  readonly id: string;
  readonly username: string;
  readonly password: string;
}

export const DEMO_USERNAME = 'demo';

const PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * 20 letters and digits (119 bits). Nothing a shell or a command line reads specially: README
 * passes it to swaks and curl, and a password starting with "-" was taken for an option.
 */
function demoPassword(): string {
  let password = '';
  for (let i = 0; i < 20; i++) password += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
  return password;
}

/**
 * At first start (no accounts at all) creates `demo`, allowed to send as anyone from anywhere once
 * authenticated, and returns its credentials for the console; null when there were accounts
 * already. Processes starting together race harmlessly: the unique username lets one win.
 */
export async function bootstrapDemoAccount(dataSource: DataSource): Promise<DemoAccount | null> {
  if (await dataSource.getRepository(AccountEntity).exists()) return null;
  const password = demoPassword();
  try {
    const account = await new AccountsRepository(dataSource).create({
      name: 'Demo account',
      username: DEMO_USERNAME,
      password,
      allowedFrom: ['*'],
      allowedIps: [],
    });
    return { id: account.id, username: account.username, password };
  } catch (error) {
    if (error instanceof UsernameTakenError) return null;
    throw error;
  }
}
