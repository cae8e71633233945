function noop(): void {}

/**
 * Group commit for an operation that covers everything done before it starts (an fsync, a check
 * of a file's link count): each caller needs a run that starts after its call, and the callers
 * who ask while a run is in flight share the next one, so a burst costs two runs, not one each.
 */
export class SharedRun {
  private running: Promise<void> | undefined;
  /** The run that starts when `running` ends, shared by everyone who asked meanwhile. */
  private next: Promise<void> | undefined;

  constructor(private readonly operation: () => Promise<void>) {}

  /** Resolves once a run that started after this call has completed; rejects if that run fails. */
  request(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    // The run in flight may have started before the caller's own work was done.
    this.next = this.running.then(noop, noop).then(() => this.start());
    return this.next;
  }

  private start(): Promise<void> {
    this.next = undefined;
    const running = this.operation();
    this.running = running;
    const settled = (): void => {
      if (this.running === running) this.running = undefined;
    };
    running.then(settled, settled);
    return running;
  }
}
