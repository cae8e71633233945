import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';

/**
 * Holds a rendered message while its DKIM signature is computed (the signature goes in front,
 * and needs the hash of the whole body). Up to `memoryLimit` bytes stay in memory; past that
 * everything goes to a file of its own in `dir`, removed once read or discarded, so a 30 MB
 * message costs disk, not heap.
 */
export class RenderSpool {
  private chunks: Buffer[] = [];
  private size = 0;
  private file: { readonly path: string; readonly handle: FileHandle } | null = null;
  private handleClosed = false;

  constructor(
    private readonly memoryLimit: number,
    private readonly dir: string,
  ) {}

  get spilled(): boolean {
    return this.file !== null;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.file === null && this.size + chunk.length <= this.memoryLimit) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      return;
    }
    if (this.file === null) {
      const path = join(this.dir, `relay-render-${randomUUID()}.eml`);
      const handle = await open(path, 'wx', 0o600);
      this.file = { path, handle };
      const held = this.chunks;
      this.chunks = [];
      for (const piece of held) await writeFully(handle, piece);
    }
    await writeFully(this.file.handle, chunk);
    this.size += chunk.length;
  }

  /** Writes everything spooled to `output` and ends it; the file (if any) is removed afterwards. */
  async drainInto(output: Writable): Promise<void> {
    const file = this.file;
    if (file === null) {
      // Already in memory: handing the chunks over costs no copy.
      for (const chunk of this.chunks) output.write(chunk);
      this.chunks = [];
      output.end();
      return;
    }
    await this.closeFile();
    if (output.destroyed) {
      await this.discard();
      return;
    }
    const stream = createReadStream(file.path, { highWaterMark: 256 * 1024 });
    stream.once('close', () => void this.discard());
    output.once('close', () => stream.destroy());
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.pipe(output);
    });
  }

  /** Drops whatever is held; safe to call at any time, and more than once. */
  async discard(): Promise<void> {
    this.chunks = [];
    const file = this.file;
    if (file === null) return;
    await this.closeFile();
    await rm(file.path, { force: true });
  }

  private async closeFile(): Promise<void> {
    if (this.file === null || this.handleClosed) return;
    this.handleClosed = true;
    await this.file.handle.close().catch(() => undefined);
  }
}

/** FileHandle.write may write less than asked (a signal, a full disk on the way); loop until done. */
async function writeFully(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    if (bytesWritten === 0) throw new Error('render spool: no progress writing the temporary file');
    offset += bytesWritten;
  }
}
