import pg from "pg";

/** A look at whether the server answers a fresh connection. */
interface Probe {
  startedAt: number;
  done: boolean;
}

/**
 * What Belfry has heard from PostgreSQL, to tell a server that is gone from one that is only slow.
 *
 * It keeps when each server last answered anything, by address: after a failover the pool may
 * hold connections to a dead host beside new ones to the live one, and only the dead host's are
 * silent. Silence alone is not proof — a commit can sit behind a slow disk for a second while the
 * server is fine — so before a wait is given up, a fresh connection asks `select 1`: a server
 * that answers it (at the same address) is alive and the wait goes on; one that does not, within
 * `probeMs`, is gone.
 *
 * @example
 * const hearing = new ServerHearing(url, { silenceMs: 750, probeMs: 500 });
 * if (hearing.gone(address)) connection.destroy();
 */
export class ServerHearing {
  readonly #url: string;
  readonly #silenceMs: number;
  readonly #probeMs: number;
  readonly #last = new Map<string, number>();
  #any = performance.now();
  #probe: Probe | undefined;

  constructor(url: string, { silenceMs, probeMs }: { silenceMs: number; probeMs: number }) {
    this.#url = url;
    this.#silenceMs = silenceMs;
    this.#probeMs = probeMs;
  }

  /** The server at `address` answered something. */
  heard(address: string): void {
    const now = performance.now();
    this.#last.set(address, now);
    this.#any = now;
  }

  /**
   * Whether a wait on the server at `address` (without one: on any server) should be given up:
   * it has said nothing for `silenceMs`, and a probe begun since then did not hear it. The first
   * call that finds the silence starts that probe and answers false; ask again shortly.
   */
  gone(address?: string): boolean {
    const last = address === undefined ? this.#any : (this.#last.get(address) ?? Number.NEGATIVE_INFINITY);
    if (performance.now() - last < this.#silenceMs) return false;
    const probe = this.#probe;
    // A probe that reached this server would have been heard, making `last` later than its start.
    if (probe?.done && probe.startedAt > last) return true;
    if (!probe || probe.done) this.#startProbe();
    return false;
  }

  #startProbe(): void {
    const probe: Probe = { startedAt: performance.now(), done: false };
    this.#probe = probe;
    const client = new pg.Client({ connectionString: this.#url, application_name: "belfry-probe" });
    client.on("error", () => {});
    const timer = setTimeout(() => client.connection.stream.destroy(), this.#probeMs);
    client
      .connect()
      .then(() => client.query("select 1"))
      .then(() => this.heard(serverAddress(client)))
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        probe.done = true;
        client.end().catch(() => {});
      });
  }
}

/** The server a connection talks to, as its socket sees it (the address a name resolved to). */
export function serverAddress(
  client: pg.ClientBase & Pick<pg.Client, "connection" | "host" | "port">,
): string {
  const stream = client.connection.stream as { remoteAddress?: string; remotePort?: number };
  return `${stream.remoteAddress ?? client.host}:${stream.remotePort ?? client.port}`;
}
