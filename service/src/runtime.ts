import { createRequire, registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const loaded = new Set<string>();
let tracking = false;

function record(url: string): void {
  if (url.startsWith('file:')) {
    try {
      loaded.add(fileURLToPath(url));
    } catch {
      loaded.add(url);
    }
  } else if (!url.startsWith('node:')) {
    loaded.add(url);
  }
}

/**
 * Records every module the process loads from now on (ESM and CommonJS), so
 * `GET /api/v1/runtime` can show what really runs. Call it before importing the app.
 */
export function trackLoadedModules(): void {
  if (tracking) return;
  tracking = true;
  registerHooks({
    load(url, context, nextLoad) {
      record(url);
      return nextLoad(url, context);
    },
  });
}

/** Paths of every module loaded: the tracked ones plus CommonJS's cache (which sees the rest). */
export function loadedModules(): string[] {
  const require = createRequire(import.meta.url);
  const all = new Set(loaded);
  for (const key of Object.keys(require.cache)) all.add(key);
  record(import.meta.url);
  all.add(fileURLToPath(import.meta.url));
  return [...all].sort();
}
