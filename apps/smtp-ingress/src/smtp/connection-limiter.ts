/** Caps concurrent SMTP connections per client IP, so one client cannot take every slot. */
export class ConnectionLimiter {
  private readonly perIp = new Map<string, number>();
  private readonly counted = new Map<string, string>();

  constructor(private readonly maxPerIp: number) {}

  /** Counts the session in; false when its IP is already at the limit. */
  tryOpen(sessionId: string, ip: string): boolean {
    const open = this.perIp.get(ip) ?? 0;
    if (open >= this.maxPerIp) return false;
    this.perIp.set(ip, open + 1);
    this.counted.set(sessionId, ip);
    return true;
  }

  /** Safe to call for every closed session; true if it had been counted in. */
  close(sessionId: string): boolean {
    const ip = this.counted.get(sessionId);
    if (ip === undefined) return false;
    this.counted.delete(sessionId);
    const open = (this.perIp.get(ip) ?? 1) - 1;
    if (open <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, open);
    return true;
  }

  openFor(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }
}
