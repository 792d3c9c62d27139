import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

/** Whether this code runs as TypeScript through tsx (a checkout's sources) rather than compiled. */
const underTsx = import.meta.url.endsWith(".ts")

/**
 * Imports a module named by path or file URL. A `.ts` module that `import()` refuses:
 * - under tsx on Node 20, a worker thread has tsx's CommonJS hook but not its ESM one (tsx
 *   registers ESM hooks on the main thread only), so it is loaded through `require` (Node 20.19+
 *   can require ESM), sharing the module cache of the code that runs;
 * - compiled (dist/), no hook is registered at all: an owner's TypeScript bot module (BOT_MODULES,
 *   `replay --kinds`) is loaded through tsx's `tsImport`, which needs nothing registered and works
 *   on worker threads too; tsx is imported only then, so compiled starts never load it.
 */
export const loadModule = async <M>(specifier: string): Promise<M> => {
  try {
    return (await import(specifier)) as M
  } catch (e) {
    if ((e as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e
    const path = specifier.startsWith("file:") ? fileURLToPath(specifier) : specifier
    if (underTsx) return createRequire(import.meta.url)(path) as M
    const { tsImport } = await import("tsx/esm/api")
    return (await tsImport(path, import.meta.url)) as M
  }
}
