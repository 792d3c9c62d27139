import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

/**
 * Imports a module named by path or file URL. Under tsx on Node 20, a worker thread gets tsx's
 * CommonJS hook but not its ESM one (tsx registers ESM hooks on the main thread only), so a `.ts`
 * module that `import()` refuses is loaded through `require` (Node 20.19+ can require ESM).
 */
export const loadModule = async <M>(specifier: string): Promise<M> => {
  try {
    return (await import(specifier)) as M
  } catch (e) {
    if ((e as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e
    const path = specifier.startsWith("file:") ? fileURLToPath(specifier) : specifier
    return createRequire(import.meta.url)(path) as M
  }
}
