/**
 * A user's migration policy in the lab: the file's text, imported as an ES module from a
 * Blob URL in the worker (a data: URL where blob: modules cannot be imported: Node, the
 * in-thread tests), then checked exactly as the CLI's loader checks a module
 * (policyFromModule: EINVAL naming the missing export or hook). Plain JavaScript only: the
 * browser runs the text as is, so a TypeScript policy goes through the CLI (--policy ./x.ts).
 */
import { err } from '../errors.js';
import { policyFromModule } from '../policy/loader.js';
import type { MigrationPolicy } from '../policy/types.js';
import { AXES } from '../experiment/schema.js';
import { isPolicyModuleName } from './config.js';

/** What the page sends with a run that names a user module: the file's name and text. */
export interface PolicySource {
  name: string;
  text: string;
}

/** Largest module text accepted (a policy is a few hooks, not a bundle). */
export const MAX_POLICY_SOURCE = 256 * 1024;

export async function importPolicySource(src: PolicySource): Promise<MigrationPolicy> {
  if (!isPolicyModuleName(src.name)) {
    throw err('EINVAL', `policy module ${src.name}: the lab loads plain JavaScript modules (.js, .mjs); run TypeScript policies with npm run experiment -- ${AXES.policy.flag} ./file.ts`);
  }
  if (src.text.length > MAX_POLICY_SOURCE) throw err('EINVAL', `policy module ${src.name}: larger than ${MAX_POLICY_SOURCE} bytes`);
  let mod: Record<string, unknown>;
  const url = URL.createObjectURL(new Blob([src.text], { type: 'text/javascript' }));
  try {
    try {
      mod = (await import(/* @vite-ignore */ url)) as Record<string, unknown>;
    } catch (e) {
      if (!/blob|URL scheme|ERR_UNSUPPORTED/i.test(String(e))) throw e;
      mod = (await import(/* @vite-ignore */ `data:text/javascript,${encodeURIComponent(src.text)}`)) as Record<string, unknown>;
    }
  } catch (e) {
    throw err('EINVAL', `policy module ${src.name}: failed to load: ${(e as Error).message}`);
  } finally {
    URL.revokeObjectURL(url);
  }
  return policyFromModule(mod, src.name);
}
