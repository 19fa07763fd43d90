/**
 * A TCP relay on a port known before its target: a routing file must name an upstream's URL
 * before the stack starts, and the ephemeral stack picks its llm-server's port itself. Until
 * `setTarget`, every connection is closed at once (an upstream that is down).
 */
import net from "node:net";

export interface Relay {
  /** Where the relay listens: http://127.0.0.1:<port>. */
  url: string;
  /** Sends every later connection to `url`'s host and port. */
  setTarget: (url: string) => void;
  close: () => Promise<void>;
}

export async function startRelay(): Promise<Relay> {
  let target: { host: string; port: number } | null = null;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!target) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setTarget: (url) => {
      const u = new URL(url);
      target = { host: u.hostname, port: Number(u.port) };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
