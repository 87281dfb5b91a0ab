/** Where a worker reports what it cannot handle itself. */
export interface WorkerLog {
  info?(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** An error as a log line's facts. */
export const errorFacts = (error: unknown) =>
  error instanceof Error
    ? { message: error.message, code: (error as { code?: string }).code }
    : { message: String(error) };
