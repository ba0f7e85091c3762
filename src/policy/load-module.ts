/**
 * A user's policy module by path (`--policy ./my-policy.ts`), Node only: resolved against
 * `cwd` (default the process's), imported. The loader (loader.ts) imports this module only
 * for a path, so that built-ins load where there is no Node (the lab's worker, the browser).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { err } from '../errors.js';

/** The module at `spec`: ENOENT when there is no such file, EINVAL when it does not load. */
export async function importPolicyModule(spec: string, cwd?: string): Promise<Record<string, unknown>> {
  const file = resolve(cwd ?? process.cwd(), spec);
  if (!existsSync(file)) throw err('ENOENT', `policy module ${spec}: no such file`);
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw err('EINVAL', `policy module ${spec}: failed to load: ${(e as Error).message}`);
  }
}
