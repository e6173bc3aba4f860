// Checks a binary before launching it, so that a bad path fails with a typed error and a hint
// instead of an exec failure deep in the launcher.
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs'
import { basename, delimiter, extname, isAbsolute, resolve } from 'node:path'
import { BinaryError } from '../errors.js'
import { IDENTIFY_BYTES, identifyFile, parseElfHeader, type FileFormat } from '../elf/index.js'
import type { Arch } from '../native/arch/index.js'

/** Resolves a binary like execvp: a name without '/' is looked up in PATH, the rest against cwd. */
export function resolveBinary(file: string, cwd: string = process.cwd()): string {
  if (file.includes('/')) return isAbsolute(file) ? file : resolve(cwd, file)
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue
    const candidate = resolve(dir, file)
    // No exception for a directory without it (most of PATH): a thrown error costs ~10 µs.
    let st
    try {
      st = statSync(candidate, { throwIfNoEntry: false })
    } catch {
      continue // ENOTDIR, EACCES
    }
    if (!st?.isFile()) continue
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not executable here
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

/** What a text file is, by its extension, and how to get a program out of it (a script runs with its interpreter). */
const SOURCES: Readonly<Record<string, { what: string; next: (path: string) => string }>> = {
  c: { what: 'C source', next: (p) => `Compile it first (gcc -g -o ${outputOf(p)} ${p}) and launch the program` },
  h: { what: 'a C header', next: () => 'Compile the program that includes it and launch that' },
  cc: { what: 'C++ source', next: (p) => `Compile it first (g++ -g -o ${outputOf(p)} ${p}) and launch the program` },
  cpp: { what: 'C++ source', next: (p) => `Compile it first (g++ -g -o ${outputOf(p)} ${p}) and launch the program` },
  cxx: { what: 'C++ source', next: (p) => `Compile it first (g++ -g -o ${outputOf(p)} ${p}) and launch the program` },
  hpp: { what: 'a C++ header', next: () => 'Compile the program that includes it and launch that' },
  rs: { what: 'Rust source', next: (p) => `Compile it first (rustc -g ${p}, or cargo build) and launch the program` },
  go: { what: 'Go source', next: () => 'Build it first (go build) and launch the program' },
  s: { what: 'assembly source', next: (p) => `Assemble and link it first (gcc -o ${outputOf(p)} ${p})` },
  py: { what: 'a Python script', next: (p) => `Launch the interpreter with it: ${launchHint('python3', [p])}` },
  sh: { what: 'a shell script', next: (p) => `Launch the shell with it: ${launchHint('/bin/sh', [p])}` },
  bash: { what: 'a bash script', next: (p) => `Launch bash with it: ${launchHint('/bin/bash', [p])}` },
  js: { what: 'JavaScript', next: (p) => `Launch node with it: ${launchHint('node', [p])}` },
  mjs: { what: 'JavaScript', next: (p) => `Launch node with it: ${launchHint('node', [p])}` },
  pl: { what: 'a Perl script', next: (p) => `Launch perl with it: ${launchHint('perl', [p])}` },
  rb: { what: 'a Ruby script', next: (p) => `Launch ruby with it: ${launchHint('ruby', [p])}` },
}

function outputOf(path: string): string {
  return basename(path).replace(/\.[^.]+$/, '') || 'program'
}

function launchHint(file: string, args: readonly string[]): string {
  return (
    `launch(${JSON.stringify(file).replaceAll('"', "'")}, { args: ` +
    `[${args.map((a) => JSON.stringify(a).replaceAll('"', "'")).join(', ')}] })`
  )
}

/** The first bytes of a file (enough to identify it and to read an ELF header); never the whole file. */
function readHead(path: string): Uint8Array {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new BinaryError(
      'ERR_NOT_EXECUTABLE',
      path,
      `${path} cannot be read (${code ?? String(error)}): procsnap reads the program's ELF ` +
        `headers and symbols. Make it readable: chmod +r ${path}`,
    )
  }
  try {
    const head = Buffer.alloc(IDENTIFY_BYTES)
    return head.subarray(0, readSync(fd, head, 0, head.length, 0))
  } finally {
    closeSync(fd)
  }
}

/** ERR_NOT_ELF for a file that is something else, saying what it is and what to launch instead. */
function notElf(path: string, format: FileFormat): BinaryError {
  const say = (what: string, next: string): BinaryError =>
    new BinaryError('ERR_NOT_ELF', path, `${path} is not an ELF file but ${what}. ${next}.`)
  switch (format.kind) {
    case 'empty':
      return say('an empty file', 'Build the program again (an interrupted build or copy leaves an empty file)')
    case 'script': {
      // '#!/usr/bin/env python3': the program is the first word after env (and its options).
      const words = [format.interpreter, ...format.args]
      let at = 0
      if (basename(format.interpreter) === 'env') {
        at = 1
        while (words[at]?.startsWith('-')) at++
      }
      const interpreter = words[at] ?? format.interpreter
      return say(
        `a script for ${interpreter}`,
        `procsnap traces ELF programs: launch the interpreter with the script as an argument: ` +
          `${launchHint(interpreter, [...words.slice(at + 1), path])}`,
      )
    }
    case 'text': {
      const source = SOURCES[extname(path).slice(1).toLowerCase()]
      return source
        ? say(`a text file (${source.what})`, source.next(path))
        : say('a text file', 'Point at a compiled binary')
    }
    case 'binary':
      return say(format.what, 'Point at an ELF program built for Linux')
    case 'unknown':
    case 'elf':
      return say(
        'a file of unknown format',
        'Point at a compiled binary (an ELF file starts with the bytes 7f 45 4c 46)',
      )
  }
}

/** Files that passed checkBinary, by path: their stat when they did, and for which arch. */
const checked = new Map<string, { key: string; arch: string }>()
const MAX_CHECKED = 1024

/**
 * Throws a BinaryError unless `path` is an executable ELF file for `arch`. The content decides
 * first (what the file is), then the mode: chmod +x is the fix only for a real program.
 */
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
  // The same file, unchanged (a write moves mtime, a chmod ctime), passed before: skip the reads.
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.mode}`
  const passed = checked.get(path)
  if (passed?.key === key && passed.arch === arch.name) return
  const head = readHead(path)
  const format = identifyFile(head)
  if (format.kind !== 'elf') throw notElf(path, format)
  const header = parseElfHeader(head, path)
  if (header.machine !== arch.elfMachine || header.class !== 64) {
    const what = ARCH_NAMES[header.machine] ?? `e_machine ${header.machine}`
    throw new BinaryError(
      'ERR_WRONG_ARCH',
      path,
      `${path} is a ${header.class}-bit ${what} binary; this tracer runs ${arch.name} binaries. ` +
        `Build it for ${arch.name} (or run the test on a ${what} machine).`,
    )
  }
  if (header.type !== 'exec' && header.type !== 'dyn') {
    throw new BinaryError(
      'ERR_NOT_EXECUTABLE',
      path,
      `${path} is an ELF ${header.type} file, not an executable. Link it into a program first.`,
    )
  }
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new BinaryError('ERR_NOT_EXECUTABLE', path, `${path} is not executable. Run: chmod +x ${path}`)
  }
  if (checked.size >= MAX_CHECKED) checked.clear()
  checked.set(path, { key, arch: arch.name })
}
