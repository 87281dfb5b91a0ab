import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "nats";
import { freePort } from "./process.js";

/**
 * The shared NATS the bus suites use: 127.0.0.1:4222 (or BELFRY_TEST_NATS). Suites never stop it;
 * each one talks on subjects of its own (`uniqueSubject`), so files running in parallel do not
 * hear each other. Under CI=true a missing NATS fails the run instead of skipping the suites.
 */
export const NATS_URL = process.env.BELFRY_TEST_NATS ?? "nats://127.0.0.1:4222";
/** The server binary for private servers (which a suite may kill and restart). */
export const NATS_SERVER = process.env.BELFRY_TEST_NATS_SERVER ?? "/usr/sbin/nats-server";

async function natsAnswers(): Promise<boolean> {
  try {
    const nc = await connect({ servers: NATS_URL.replace(/^nats:\/\//, ""), timeout: 3000 });
    await nc.flush();
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

const natsUp = (await natsAnswers()) && existsSync(NATS_SERVER);
if (!natsUp) {
  const what = `NATS does not answer at ${NATS_URL} or ${NATS_SERVER} is missing`;
  if (process.env.CI === "true") throw new Error(`${what}; CI requires both.`);
  console.warn(`${what}: the NATS suites are skipped.`);
}

/** Whether the NATS suites run. */
export const NATS_UP = natsUp;

/** A subject no other suite or run uses, e.g. `belfry_test.nats-bus.3f9a…`. */
export function uniqueSubject(tag: string): string {
  return `belfry_test.${tag}.${randomBytes(6).toString("hex")}`;
}

/** A NATS server of the suite's own on a free port, which it may stop and start again. */
export interface PrivateNats {
  readonly url: string;
  /** Kills the server (SIGKILL: connections are cut, not closed). */
  stop(): Promise<void>;
  /** Starts it again on the same port (unless it runs) and waits until it accepts connections. */
  start(): Promise<void>;
}

/**
 * Starts a private `nats-server` on a free loopback port (never the shared one), with `args`
 * added (e.g. `--user`/`--pass`).
 */
export async function privateNats(args: string[] = []): Promise<PrivateNats> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const server: PrivateNats = {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      proc?.kill("SIGKILL");
      await exited;
      proc = undefined;
    },
    async start() {
      if (proc) return;
      const p = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port), ...args], { stdio: "ignore" });
      proc = p;
      exited = new Promise((resolve) => p.once("exit", resolve));
      for (let i = 0; i < 250; i++) {
        if (await accepts(port)) return;
        await sleep(20);
      }
      throw new Error(`nats-server did not start on port ${port}`);
    },
  };
  await server.start();
  // A suite that dies half-way must not leave its server behind.
  process.once("exit", () => proc?.kill("SIGKILL"));
  return server;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
