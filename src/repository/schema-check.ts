import { schemaProblem } from '../engines/sqlite/schema-guard.js';
import { quoteIdent } from '../engines/sqlite/sql-text.js';
import type { Problem } from './errors.js';
import type { Snapshot } from './manifest.js';
import { postgresManifestProblems } from './postgres-manifest-check.js';

/**
 * The schema SQL of a manifest that is not exactly the plain CREATE statement of the object it names
 * (schema-guard.ts): one E_CORRUPT problem per such table, index, view or trigger. A manifest is
 * written by whoever can write to the repository, so restore and verify run this before any of it
 * reaches a database, and refuse the snapshot when the list is not empty.
 */
export function manifestSchemaProblems(snapshot: Pick<Snapshot, 'id' | 'schema'>): Problem[] {
  const problems: Problem[] = [];
  const schema = snapshot.schema as Partial<Snapshot['schema']> | undefined;
  if (!schema || !Array.isArray(schema.tables) || !Array.isArray(schema.objects)) {
    return [{ code: 'E_CORRUPT', snapshot: snapshot.id, message: 'its manifest has no schema' }];
  }
  if (schema.engine === 'postgres') return postgresManifestProblems(snapshot);
  for (const table of schema.tables) {
    const problem = schemaProblem({ type: 'table', name: table?.name }, table?.sql);
    if (problem) problems.push({ code: 'E_CORRUPT', snapshot: snapshot.id, table: String(table?.name), message: `its schema is ${problem}` });
  }
  for (const object of schema.objects) {
    const type = object?.type === 'index' || object?.type === 'view' || object?.type === 'trigger' ? object.type : undefined;
    const problem = type
      ? schemaProblem({ type, name: object.name, table: object.table }, object.sql)
      : 'not an index, view or trigger';
    if (problem) {
      problems.push({ code: 'E_CORRUPT', snapshot: snapshot.id, message: `${type ?? 'object'} ${quoteIdent(String(object?.name))}: its schema is ${problem}` });
    }
  }
  return problems;
}
