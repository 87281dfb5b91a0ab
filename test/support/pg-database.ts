import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * Creates an empty PostgreSQL database on the server `adminUrl` reaches (named `name`, or a
 * random `belfry_test_…`): the one way tests make a throwaway database, on the shared server or
 * on a private cluster.
 *
 * When the admin database has the citus extension (`BELFRY_TEST_PG` points at a Citus
 * coordinator), the new database is made a Citus cluster of its own, as an operator would: the
 * database on every node, the extension in each, and the coordinator's workers added to it.
 */
export async function createPgDatabase(
  adminUrl: string,
  name = `belfry_test_${randomBytes(6).toString("hex")}`,
): Promise<{ url: string; drop(): Promise<void> }> {
  const workers = await citusWorkers(adminUrl);
  const nodes = [adminUrl, ...workers.map((w) => urlAt(adminUrl, w))];
  for (const node of nodes) await run(node, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  if (workers.length > 0) {
    for (const node of nodes) await run(urlIn(node, name), "create extension citus");
    const coordinator = new URL(adminUrl);
    await run(
      url.toString(),
      `select citus_set_coordinator_host('${coordinator.hostname}', ${coordinator.port || 5432})`,
    );
    for (const w of workers) await run(url.toString(), `select citus_add_node('${w.host}', ${w.port})`);
  }
  return {
    url: url.toString(),
    drop: async () => {
      for (const node of nodes) await run(node, `drop database if exists ${name} with (force)`);
    },
  };
}

interface Node {
  host: string;
  port: number;
}

/** The workers of the Citus cluster `adminUrl` is the coordinator of (none on plain PostgreSQL). */
export async function citusWorkers(adminUrl: string): Promise<Node[]> {
  const rows = await run(
    adminUrl,
    `select nodename as host, nodeport as port from pg_dist_node where groupid <> 0 and exists
       (select 1 from pg_extension where extname = 'citus') order by nodeport`,
  ).catch(() => []); // no pg_dist_node: not Citus
  return rows as unknown as Node[];
}

async function run(url: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

function urlAt(base: string, node: Node): string {
  const url = new URL(base);
  url.hostname = node.host;
  url.port = String(node.port);
  return url.toString();
}

function urlIn(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}
