import {
  type Compilable,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryId,
  type RawBuilder,
  type RootOperationNode,
  sql,
} from 'kysely';
import type { Database } from './schema.js';

/**
 * A statement built once with Kysely and run many times with values given by name: the SQL text (for
 * a named prepared statement), and the parameter names in position order (`names[0]` is `$1`).
 */
export interface NamedStatement<P> {
  /** The prepared statement's name, one per statement text. */
  readonly name: string;
  readonly text: string;
  readonly names: readonly (keyof P & string)[];
  /** The values in position order, ready for `pool.query` or `CompiledQuery.raw`. */
  values(params: P): unknown[];
}

/** A value of the statement by its name: what the query holds in its place until it runs. */
export type Param<P> = <K extends keyof P & string>(name: K) => RawBuilder<P[K]>;

class Placeholder {
  constructor(readonly name: string) {}
}

/**
 * Compiles named placeholders to `$n`, the same `$n` for every use of a name (as a hand-written
 * statement would), and refuses any other value: a constant must be a literal (`sql.lit`), so every
 * parameter of the statement has a name and comes from the caller at run time.
 */
class NamedParameterCompiler extends PostgresQueryCompiler {
  #positions = new Map<string, number>();

  override compileQuery(node: RootOperationNode, queryId: QueryId) {
    this.#positions = new Map();
    return super.compileQuery(node, queryId);
  }

  protected override appendValue(parameter: unknown): void {
    if (!(parameter instanceof Placeholder)) {
      throw new TypeError(`a named statement takes named values only, got the constant ${String(parameter)}`);
    }
    const position = this.#positions.get(parameter.name);
    if (position !== undefined) {
      this.append(`$${position}`);
      return;
    }
    super.appendValue(parameter);
    this.#positions.set(parameter.name, this.numParameters);
  }
}

// Builds queries, never runs them: no connection behind it.
const builder = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new NamedParameterCompiler(),
  },
});

const param = <P>(name: keyof P & string) => sql<never>`${new Placeholder(name)}`;

/** Builds and compiles `build`'s query once; call at module load. */
export function namedStatement<P>(
  name: string,
  build: (db: Kysely<Database>, param: Param<P>) => Compilable,
): NamedStatement<P> {
  const compiled = build(builder, param as Param<P>).compile();
  const names = compiled.parameters.map((p) => (p as Placeholder).name as keyof P & string);
  return {
    name,
    text: compiled.sql,
    names,
    values: (params) => names.map((n) => params[n]),
  };
}
