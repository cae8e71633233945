import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What `npm start` runs (package.json "start"), relative to the repository root. */
const MAIN = 'apps/relay/dist/main.js';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 45_000;

export interface RelayChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RelayChild {
  readonly process: ChildProcess;
  readonly pid: number;
  /** The start-up summary main.ts prints (stdout lines that are not JSON log lines). */
  readonly startupLines: readonly string[];
  /** Read back from the start-up lines, so OS-chosen ports (0) are usable. */
  readonly smtpPort: number;
  readonly smtpsPort: number;
  readonly adminUrl: string;
  /** `admin token (generated, kept in <file>): <token>`: printed only when the token was made just now. */
  readonly generatedAdminToken: { readonly file: string; readonly token: string } | undefined;
  /** `demo account created: username <u>  password <p>`: printed only on a first start. */
  readonly demoAccount: { readonly username: string; readonly password: string } | undefined;
  readonly exited: Promise<RelayChildExit>;
  /** Everything it wrote to stdout and stderr so far, for failure messages. */
  output(): string;
  /**
   * A graceful stop (SIGTERM, or SIGINT as Ctrl-C sends), then SIGKILL if it is still running
   * after `timeoutMs`: a stop that hangs shows as `signal: 'SIGKILL'` in the result.
   */
  stop(signal?: 'SIGTERM' | 'SIGINT', timeoutMs?: number): Promise<RelayChildExit>;
  /** SIGKILL: a crash, nothing runs after it. Resolves once the process is gone. */
  kill(): Promise<RelayChildExit>;
}

/**
 * Sends `signal` (unless the process has exited), then SIGKILL if it is still running after
 * `timeoutMs`; by PID only. `forced` tells whether the SIGKILL was needed.
 */
export async function signalThenKill(
  child: ChildProcess,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<RelayChildExit & { readonly forced: boolean }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { code: child.exitCode, signal: child.signalCode, forced: false };
  }
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill(signal);
  let forced = false;
  const timer = setTimeout(() => {
    forced = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  try {
    const [code, exitSignal] = await exited;
    return { code, signal: exitSignal, forced };
  } finally {
    clearTimeout(timer);
  }
}

/** Children still running, killed if this process exits without having stopped them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLeftOversOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** The repository root, from test/support (vitest) as from test/dist/support (compiled). */
function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'apps/relay/package.json'))) return dir;
  }
  throw new Error('no repository root above this file');
}

function parseStartup(lines: readonly string[], output: () => string) {
  const find = (pattern: RegExp): RegExpExecArray | undefined =>
    lines.map((line) => pattern.exec(line)).find((match) => match !== null) ?? undefined;
  const port = (pattern: RegExp): number => {
    const match = find(pattern);
    if (!match?.[1]) throw new Error(`no start-up line matches ${String(pattern)}:\n${output()}`);
    return Number(match[1]);
  };
  const admin = find(/^admin API: +(http:\/\/\S+)/);
  if (!admin?.[1]) throw new Error(`no admin API start-up line:\n${output()}`);
  const token = find(/^admin token \(generated, kept in (.+)\): (\S+)$/);
  const demo = find(/^demo account created: username (\S+) {2}password (\S+)$/);
  return {
    smtpPort: port(/^SMTP: +[^ ]+:(\d+) \(STARTTLS offered\)$/),
    smtpsPort: port(/^SMTP: +[^ ]+:(\d+) \(implicit TLS\)$/),
    adminUrl: admin[1],
    generatedAdminToken: token?.[1] && token[2] ? { file: token[1], token: token[2] } : undefined,
    demoAccount: demo?.[1] && demo[2] ? { username: demo[1], password: demo[2] } : undefined,
  };
}

/**
 * Runs the relay as `npm start` does, `node --enable-source-maps apps/relay/dist/main.js` from the
 * repository root (build first), with an environment of `env` and PATH only: nothing else of the
 * calling process (KAFKA_BROKERS, ADMIN_TOKEN, NODE_OPTIONS, ...) reaches it. Resolves once the
 * start-up summary is printed; its last line is `TLS:`, so every role that prints must run,
 * smtp-ingress included. A process that exits or is not ready in time rejects with its output.
 */
export async function startRelayChild(env: Readonly<Record<string, string>>): Promise<RelayChild> {
  const root = repoRoot();
  if (!existsSync(join(root, MAIN))) throw new Error(`${MAIN} is missing: run npm run build first`);
  killLeftOversOnExit();
  const child = spawn(process.execPath, ['--enable-source-maps', MAIN], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { pid } = child;
  if (pid === undefined) throw new Error(`could not start ${MAIN}`);
  running.add(child);
  const exited = new Promise<RelayChildExit>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );

  const transcript: string[] = [];
  const output = (): string => transcript.join('\n');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => transcript.push(chunk.trimEnd()));
  const startupLines: string[] = [];
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    transcript.push(line);
    if (line.startsWith('{')) return;
    startupLines.push(line);
    if (line.startsWith('TLS:')) markReady();
  });

  let timer: NodeJS.Timeout | undefined;
  const failure = await Promise.race([
    ready.then(() => undefined),
    exited.then((exit) => `exited (code ${exit.code}, signal ${exit.signal}) before it was ready`),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (failure !== undefined) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`relay ${failure}:\n${output()}`);
  }

  const signalled = async (signal: NodeJS.Signals, timeoutMs: number): Promise<RelayChildExit> => {
    await signalThenKill(child, signal, timeoutMs);
    return exited;
  };
  let startup: ReturnType<typeof parseStartup>;
  try {
    startup = parseStartup(startupLines, output);
  } catch (error) {
    await signalled('SIGKILL', 0);
    throw error;
  }
  return {
    process: child,
    pid,
    startupLines,
    ...startup,
    exited,
    output,
    stop: (signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) => signalled(signal, timeoutMs),
    kill: () => signalled('SIGKILL', 0),
  };
}
