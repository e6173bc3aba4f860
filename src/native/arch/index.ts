// The architecture this process runs on; aarch64 and i386 slot in here with their own layout files.
import { UnsupportedArchError } from '../../errors.js'
import type { Arch } from './types.js'
import { x86_64 } from './x86_64.js'

export type { Arch, Emulation, RegisterAlias } from './types.js'

const BY_NODE_ARCH: Readonly<Record<string, Arch>> = { x64: x86_64 }

let host: Arch | undefined

/** The tracer's own architecture: tracees must match it. */
export function hostArch(): Arch {
  if (host) return host
  const arch = BY_NODE_ARCH[process.arch]
  if (!arch) {
    throw new UnsupportedArchError(
      `procsnap traces Linux x86_64 processes; this machine is ` +
        `${process.platform}/${process.arch}. aarch64 and i386 register layouts are not written ` +
        `yet.`,
    )
  }
  host = arch
  return arch
}
