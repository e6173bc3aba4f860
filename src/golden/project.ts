// Which modules are the project's: shown in full in a golden (offsets, build-ids, map sizes). The
// others (system libraries: libc, ld.so, libstdc++) are shown by symbol only, so that a security
// update of libc, which moves every offset in it, leaves the golden of an unchanged program as it was.
import { realpathSync } from 'node:fs'
import { sep } from 'node:path'
import type { SnapshotData } from '../snapshot/model.js'
import type { SnapshotModule } from '../snapshot/regions.js'

/** A library by base name ('libplugin.so') or a pattern tested on the base name (/^libfoo/). */
export type ModulePattern = string | RegExp

/** toMatchProcessSnapshot's `modules`: the libraries shown in full beside the executable, or 'all'. */
export type ProjectModules = readonly ModulePattern[] | 'all'

function realRoot(root: string): string[] {
  try {
    const real = realpathSync(root)
    return real === root ? [root] : [root, real]
  } catch {
    return [root]
  }
}

/**
 * The paths of the modules shown in full: the executable, then the libraries `modules` names, or by
 * default those whose file lies inside the project root (the kernel shows real paths, so the root is
 * compared by its real path too).
 */
export function projectPaths(
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  chosen: ProjectModules | undefined,
  root: string,
): Set<string> {
  if (chosen === 'all') return new Set(modules.map((m) => m.path))
  const roots = realRoot(root).map((r) => (r.endsWith(sep) ? r : `${r}${sep}`))
  const matches = (m: SnapshotModule): boolean =>
    chosen === undefined
      ? roots.some((r) => m.path.startsWith(r))
      : chosen.some((p) => (typeof p === 'string' ? p === m.name : new RegExp(p.source, p.flags).test(m.name)))
  return new Set(modules.filter((m) => m.path === data.exe || matches(m)).map((m) => m.path))
}
