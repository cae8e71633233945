import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

const SERVFAIL = 2;
const NXDOMAIN = 3;

/** What the test DNS server knows about one name. */
export interface ZoneEntry {
  readonly mx?: readonly { readonly exchange: string; readonly priority: number }[];
  readonly a?: readonly string[];
  readonly aaaa?: readonly string[];
  /** Answer NXDOMAIN: the name does not exist. */
  readonly nxdomain?: boolean;
  /** Answer SERVFAIL: a temporary failure. */
  readonly servfail?: boolean;
}

/**
 * A real DNS server over UDP on 127.0.0.1 for tests of MX routing: a node Resolver pointed at it
 * (resolver.setServers([server.address])) asks it exactly as it would ask the machine's resolver.
 */
export class DnsTestServer {
  private socket?: Socket;
  port = 0;

  constructor(private readonly zone: Readonly<Record<string, ZoneEntry>>) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (message, remote) => {
      const reply = this.answer(message);
      if (reply) socket.send(reply, remote.port, remote.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    this.port = socket.address().port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }

  private answer(message: Buffer): Buffer | undefined {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return undefined;
    }
    const question = query.questions?.[0];
    if (!question) return undefined;
    const entry = this.zone[question.name.toLowerCase().replace(/\.$/, '')];
    const answers: dnsPacket.Answer[] = [];
    if (entry && !entry.nxdomain && !entry.servfail) {
      if (question.type === 'MX') {
        for (const mx of entry.mx ?? []) {
          answers.push({
            type: 'MX',
            name: question.name,
            ttl: 60,
            data: { preference: mx.priority, exchange: mx.exchange },
          });
        }
      } else if (question.type === 'A') {
        for (const a of entry.a ?? []) answers.push({ type: 'A', name: question.name, ttl: 60, data: a });
      } else if (question.type === 'AAAA') {
        for (const a of entry.aaaa ?? [])
          answers.push({ type: 'AAAA', name: question.name, ttl: 60, data: a });
      }
    }
    // The response code sits in the low 4 bits of the header flags (RFC 1035 4.1.1).
    const rcode = !entry || entry.nxdomain ? NXDOMAIN : entry.servfail ? SERVFAIL : 0;
    return dnsPacket.encode({
      id: query.id,
      type: 'response',
      flags:
        dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHORITATIVE_ANSWER | rcode,
      questions: [question],
      answers,
    });
  }
}
