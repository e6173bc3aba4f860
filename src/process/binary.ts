// Checks a binary before launching it, so that a bad path fails with a typed error and a hint
// instead of an exec failure deep in the launcher.
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, isAbsolute, resolve } from 'node:path'
import { BinaryError } from '../errors.js'
import { readElfHeader } from '../elf/index.js'
import type { Arch } from '../native/arch/index.js'

/** Resolves a binary like execvp: a name without '/' is looked up in PATH, the rest against cwd. */
export function resolveBinary(file: string, cwd: string = process.cwd()): string {
  if (file.includes('/')) return isAbsolute(file) ? file : resolve(cwd, file)
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue
    const candidate = resolve(dir, file)
    try {
      accessSync(candidate, constants.X_OK)
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // not here
    }
  }
  throw new BinaryError(
    'ERR_FILE_NOT_FOUND',
    file,
    `No executable '${file}' in PATH. Give a path ('./${file}', '/usr/bin/${file}') or build it first.`,
  )
}

const ARCH_NAMES: Readonly<Record<number, string>> = {
  3: 'i386',
  40: 'arm',
  62: 'x86_64',
  183: 'aarch64',
  243: 'riscv64',
}

/** Throws a BinaryError unless `path` is an executable ELF file for `arch`. */
export function checkBinary(path: string, arch: Arch): void {
  let st
  try {
    st = statSync(path)
  } catch {
    throw new BinaryError(
      'ERR_FILE_NOT_FOUND',
      path,
      `Binary not found: ${path}. Check the path, or build the binary first (fixtures: make -C fixtures/c).`,
    )
  }
  if (!st.isFile())
    throw new BinaryError(
      'ERR_NOT_EXECUTABLE',
      path,
      `${path} is not a regular file${st.isDirectory() ? ' but a directory' : ''}. Give the path of an executable.`,
    )
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new BinaryError('ERR_NOT_EXECUTABLE', path, `${path} is not executable. Run: chmod +x ${path}`)
  }
  const header = readElfHeader(path)
  if (header.machine !== arch.elfMachine || header.class !== 64) {
    const what = ARCH_NAMES[header.machine] ?? `e_machine ${header.machine}`
    throw new BinaryError(
      'ERR_WRONG_ARCH',
      path,
      `${path} is a ${header.class}-bit ${what} binary; this tracer runs ${arch.name} binaries. Build it for ${arch.name} (or run the test on a ${what} machine).`,
    )
  }
  if (header.type !== 'exec' && header.type !== 'dyn') {
    throw new BinaryError(
      'ERR_NOT_EXECUTABLE',
      path,
      `${path} is an ELF ${header.type} file, not an executable. Link it into a program first.`,
    )
  }
}
