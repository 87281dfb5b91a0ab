import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * Creates an empty PostgreSQL database on the server `adminUrl` reaches (named `name`, or a
 * random `belfry_test_…`): the one way tests make a throwaway database, on the shared server or
 * on a private cluster.
 */
export async function createPgDatabase(
  adminUrl: string,
  name = `belfry_test_${randomBytes(6).toString("hex")}`,
): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
