// The commands of `npx procsnap`: each takes its arguments (already parsed) and returns the exit
// code; what it prints goes to `out`. Snapshots are read with loadSnapshot; a file that is not one is
// the library's typed error, which main.ts prints.
import { closeSync, mkdirSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { crashReport, formatCrashReport, type CrashReport } from '../crash/report.js'
import { ProcsnapError } from '../errors.js'
import { readText } from '../golden/files.js'
import { parseGolden } from '../golden/parse.js'
import { signalNumber } from '../native/constants.js'
import { launch } from '../process/launch.js'
import type { SnapshotLevel } from '../snapshot/model.js'
import { loadCore } from '../snapshot/load-core.js'
import { loadSnapshot, ProcessSnapshot, type PrintOptions, type Snapshot } from '../snapshot/snapshot.js'

export interface Output {
  write(text: string): unknown
  readonly isTTY?: boolean
}

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  /** diff: the snapshots differ (as diff(1) says 1). */
  differ: 1,
  /** A wrong command line. */
  usage: 2,
  /** A file that cannot be read as what it should be, a program that cannot run: the library's typed error. */
  failed: 3,
} as const

/** Whether the file at `path` begins with `magic`; false for one that cannot be read (the loader then says why). */
function beginsWith(path: string, magic: string): boolean {
  let fd: number | undefined
  try {
    fd = openSync(path, 'r')
    const head = Buffer.alloc(magic.length)
    return readSync(fd, head, 0, head.length, 0) === head.length && head.toString('latin1') === magic
  } catch {
    return false
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** A core file starts as every ELF file does; a golden with its header line. */
const ELF_MAGIC = '\x7fELF'
const GOLDEN_MAGIC = '# procsnap golden '

/** A golden file: checked as the golden workflow reads it (ERR_GOLDEN_CORRUPT with its line), then printed. */
function showGolden(out: Output, path: string): number {
  const text = readText(path) ?? ''
  const doc = parseGolden(text, path)
  out.write(`golden of ${JSON.stringify(doc.key)} (${doc.test}), ${doc.sections.length} sections\n\n${text}`)
  return EXIT.ok
}

/** A snapshot file, or a core file (the kernel's, gcore's, saveCore's) read as one. */
function load(path: string): Snapshot {
  return beginsWith(path, ELF_MAGIC) ? loadCore(path) : loadSnapshot(path)
}

function processSnapshot(path: string): ProcessSnapshot {
  const snapshot: Snapshot = load(path)
  if (!(snapshot instanceof ProcessSnapshot))
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `${path} is a snapshot of one thread; this command needs a whole process.`,
    )
  return snapshot
}

/** `procsnap show FILE`: the stop, registers, backtrace and maps; or one part; or memory at a location; or a golden file, checked. */
export function show(
  out: Output,
  file: string,
  options: { thread?: number; memory?: string; length?: number; part?: 'registers' | 'backtrace' | 'maps' },
): number {
  if (beginsWith(file, GOLDEN_MAGIC)) return showGolden(out, file)
  const snapshot = load(file)
  const print: PrintOptions = { stream: out }
  if (options.memory !== undefined) {
    const at = /^0x[0-9a-f]+$/i.test(options.memory) ? BigInt(options.memory) : options.memory
    snapshot.pprintMemory(at, options.length ?? 64, print)
    return EXIT.ok
  }
  const thread = options.thread
  if (!options.part) {
    out.write(
      `${snapshot.kind} snapshot of ${snapshot.exe} (pid ${snapshot.pid}), ${snapshot.level}, ${snapshot.createdAt}\n`,
    )
    const stop = snapshot.stop
    if (stop) out.write(`stopped: ${stop.kind} at ${stop.location} in thread ${stop.thread}\n`)
    out.write('\n')
  }
  if (!options.part || options.part === 'registers') snapshot.pprintRegisters({ ...print, ...(thread && { thread }) })
  if (!options.part || options.part === 'backtrace') snapshot.pprintBacktrace({ ...print, ...(thread && { thread }) })
  if (!options.part || options.part === 'maps') snapshot.pprintMaps(print)
  return EXIT.ok
}

/** `procsnap diff A B`: the structured diff; exit 1 when they differ, as diff(1). */
export function diff(out: Output, a: string, b: string): number {
  const d = loadSnapshot(a).diff(loadSnapshot(b))
  if (d.isEmpty) {
    out.write('no differences\n')
    return EXIT.ok
  }
  d.pprint({ stream: out })
  return EXIT.differ
}

/** A crash report as JSON: bigints as hex strings, bytes as hex. */
export function reportJson(report: CrashReport): string {
  return JSON.stringify(
    report,
    (_key, value: unknown) =>
      typeof value === 'bigint'
        ? `0x${value.toString(16)}`
        : value instanceof Uint8Array
          ? Buffer.from(value).toString('hex')
          : value,
    2,
  )
}

/** `procsnap report FILE [--json]`. */
export function report(out: Output, file: string, json: boolean): number {
  const r = crashReport(processSnapshot(file))
  out.write(json ? `${reportJson(r)}\n` : formatCrashReport(r))
  return EXIT.ok
}

/** `procsnap signature FILE [--verbose]`: the id alone, for scripts; with what it signs. */
export function signature(out: Output, file: string, verbose: boolean): number {
  const r = crashReport(processSnapshot(file))
  out.write(verbose ? `${r.signature} ${r.signatureText}\n` : `${r.signature}\n`)
  return EXIT.ok
}

/** `procsnap import CORE -o FILE [--exe PATH]`: a core file as a snapshot file. */
export function importCore(out: Output, core: string, output: string, exe: string | undefined): number {
  loadCore(core, exe === undefined ? {} : { exe }).save(output)
  out.write(`wrote ${output}\n`)
  return EXIT.ok
}

/** `procsnap core FILE -o CORE`. */
export function core(out: Output, file: string, output: string): number {
  processSnapshot(file).saveCore(output)
  out.write(`wrote ${output}\n`)
  return EXIT.ok
}

/**
 * `procsnap run [--snapshot-on crash|exit|SYMBOL] [--level L] [-o DIR] -- PROGRAM ARGS`: runs the
 * program under procsnap; writes the snapshot (and at a crash the report) into DIR, prints the
 * report, and exits with the program's status (128 + the signal's number when a signal ended it).
 */
export async function run(
  out: Output,
  argv: readonly string[],
  options: { on: string; level: SnapshotLevel; dir: string; timeout: number },
): Promise<number> {
  const [program, ...args] = argv
  if (!program)
    throw new ProcsnapError('ERR_BAD_ARGUMENT', 'run: name the program after --: procsnap run -- ./prog args')
  const crash = options.on === 'crash'
  const proc = await launch(program, {
    args,
    stdin: '',
    stdout: 'inherit',
    stderr: 'inherit',
    timeout: options.timeout,
    ...(crash && { crash: 'snapshot' as const }),
  })
  try {
    if (!crash) proc.breakAt(options.on === 'exit' ? 'libc.so.6!_exit' : options.on)
    let written: string | undefined
    for (;;) {
      const ev = await proc.cont()
      if (ev.kind === 'exited' || ev.kind === 'killed') break
      if (ev.kind === 'breakpoint' && !written) {
        mkdirSync(options.dir, { recursive: true })
        written = join(options.dir, `${options.on.replace(/[^\w.-]+/g, '_')}.procsnap`)
        proc.saveSnapshot(written, { level: options.level })
        out.write(`procsnap: snapshot at ${ev.location} written to ${written}\n`)
        proc.breakpoints.forEach((b) => b.remove())
      }
    }
    const caught = proc.crash
    if (caught) {
      mkdirSync(options.dir, { recursive: true })
      const path = join(options.dir, `crash-${caught.report.signature}.procsnap`)
      caught.snapshot.save(path)
      out.write(`${formatCrashReport(caught.report)}\nprocsnap: crash snapshot written to ${path}\n`)
    }
  } finally {
    await proc.kill()
  }
  const exit = proc.exit
  return exit?.signal !== undefined ? 128 + (signalNumber(exit.signal) ?? 0) : (exit?.exitCode ?? EXIT.failed)
}
