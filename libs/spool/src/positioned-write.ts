import { write } from 'node:fs';
import { promisify } from 'node:util';

const writeDescriptor = promisify(write);

/** Writes all of `octets` at `position` of an open file, however many writes that takes. */
export async function writeAt(descriptor: number, octets: Buffer, position: number): Promise<void> {
  for (let done = 0; done < octets.length;) {
    const { bytesWritten } = await writeDescriptor(
      descriptor,
      octets,
      done,
      octets.length - done,
      position + done,
    );
    done += bytesWritten;
  }
}
