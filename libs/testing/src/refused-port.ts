/**
 * A port on 127.0.0.1 that refuses connections: tcpmux's, which nothing on these machines serves.
 * A fixed one, because a port the OS picked and released may be taken again by another test's
 * server or outgoing connection before the test connects to it.
 */
export const REFUSED_PORT = 1;
