import type { Compilable, CompiledQuery, Kysely } from "kysely";

/**
 * Builds and compiles a query once (for the hot path); each call runs that SQL with new
 * parameter values, given in the order the built query uses them. Build it with
 * placeholder values of the right kind; they are never sent.
 */
export function prepared<R, P extends readonly unknown[]>(
  db: Pick<Kysely<unknown>, "executeQuery">,
  query: Compilable<R>,
): (...params: P) => Promise<R[]> {
  const compiled: CompiledQuery<R> = query.compile();
  return async (...params) => {
    if (params.length !== compiled.parameters.length) {
      throw new Error(`prepared query: ${params.length} parameters for ${compiled.sql}`);
    }
    const result = await db.executeQuery<R>({ ...compiled, parameters: params });
    return result.rows;
  };
}
