// What the plugin passes from Vitest's main process to its workers (project.provide / inject):
// plain data, RegExps as source and flags.
import type { GoldenDefaults } from '../golden/workflow.js'
import type { ProjectModules } from '../golden/project.js'

export const PROVIDED_KEY = 'procsnap'

export interface Provided {
  readonly root: string
  readonly modules?: 'all' | readonly (string | { readonly source: string; readonly flags: string })[]
}

export function toProvided(root: string, modules: ProjectModules | undefined): Provided {
  if (modules === undefined) return { root }
  if (modules === 'all') return { root, modules }
  return { root, modules: modules.map((m) => (typeof m === 'string' ? m : { source: m.source, flags: m.flags })) }
}

export function fromProvided(value: Provided | undefined): GoldenDefaults {
  if (!value) return {}
  const { root, modules } = value
  if (modules === undefined) return { root }
  if (modules === 'all') return { root, modules }
  return { root, modules: modules.map((m) => (typeof m === 'string' ? m : new RegExp(m.source, m.flags))) }
}
