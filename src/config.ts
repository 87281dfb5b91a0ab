/**
 * Configuration, layered: defaults, then the environment, then explicit overrides (CLI flags).
 * SPEC §8 names the variables; docs/configuration is the README's table.
 */
export interface Config {
  /** Unset → the embedded store at ./data/belfry.db. */
  readonly databaseUrl: string | undefined;
  readonly port: number;
  readonly host: string;
  /** Unset → the server generates one per run and prints it once. */
  readonly adminToken: string | undefined;
  readonly logLevel: string;
  readonly pgPoolSize: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const text = (name: string) => (env[name] === undefined || env[name] === "" ? undefined : env[name]);
  const logLevel = text("BELFRY_LOG_LEVEL") ?? "info";
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`BELFRY_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  return {
    databaseUrl: text("DATABASE_URL"),
    port: integer("PORT", text("PORT"), 8080, 0, 65535),
    host: text("HOST") ?? "127.0.0.1",
    adminToken: text("BELFRY_ADMIN_TOKEN"),
    logLevel,
    pgPoolSize: integer("BELFRY_PG_POOL_SIZE", text("BELFRY_PG_POOL_SIZE"), 10, 1, 1000),
    ...overrides,
  };
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}
