import { subscribe } from "node:diagnostics_channel";
import { isIP, type Socket } from "node:net";

/** The only addresses a test may connect to. */
const LOOPBACK = new Set(["127.0.0.1", "::1"]);

/** Connections the tripwire stopped, by the address they were about to reach. */
export interface PacketTripwire {
  readonly stopped: string[];
}

let installed: PacketTripwire | undefined;

/**
 * Stops, before its first packet, every outgoing TCP connection of this process to an address
 * other than 127.0.0.1 and ::1, and records it. The SSRF tests hand the delivery worker refused
 * addresses such as 10.0.0.1 as values its guard must refuse; if the guard ever regressed, the
 * attempt would die here (recorded as something other than `blocked`) instead of sending a SYN
 * to a real network.
 *
 * A literal IP host is caught where `net` is about to connect to it; a name is caught at the
 * socket's synchronous `lookup` event, after which `net` checks that the socket is still
 * connecting before it connects.
 */
export function installPacketTripwire(): PacketTripwire {
  if (installed) return installed;
  const tripwire: PacketTripwire = { stopped: [] };
  const stop = (socket: Socket, address: string) => {
    tripwire.stopped.push(address);
    socket.destroy();
    // The request attaches its listeners after the socket is created; report on a later turn.
    setImmediate(() => socket.emit("error", new Error(`packet tripwire: refused to connect to ${address}`)));
  };
  subscribe("net.client.socket", (message) => {
    const { socket } = message as { socket: Socket };
    const connect = socket.connect;
    socket.connect = function (this: Socket, ...args: unknown[]) {
      // net.connect passes its normalised [options, callback] array as the only argument.
      const first = Array.isArray(args[0]) ? args[0][0] : args[0];
      const host = typeof first === "object" && first !== null ? (first as { host?: unknown }).host : args[1];
      if (typeof host === "string" && isIP(host) !== 0 && !LOOPBACK.has(host)) {
        stop(this, host);
        return this;
      }
      return (connect as (...a: unknown[]) => Socket).apply(this, args);
    } as Socket["connect"];
    socket.prependListener("lookup", (_error: unknown, address: unknown) => {
      if (typeof address === "string" && !LOOPBACK.has(address)) stop(socket, address);
    });
  });
  installed = tripwire;
  return tripwire;
}
