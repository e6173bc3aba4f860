#!/usr/bin/env node
// `npx procsnap`: show, diff, report, sign, convert and run, from the command line. Arguments are
// parsed with node:util's parseArgs (Node's own, maintained with it: no dependency); every command
// has --help; exit codes: 0 done, 1 diff found differences, 2 a wrong command line, 3 a file or a
// program procsnap could not handle (the typed error's message says why), and `run` exits with the
// program's own status. Colour only on a terminal (the pretty printers decide, FORCE_COLOR too).
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ProcsnapError } from '../errors.js'
import type { SnapshotLevel } from '../snapshot/model.js'
import '../index.js'
import { core, diff, EXIT, importCore, report, run, show, signature, type Output } from './commands.js'
import { review, type KeyInput } from './review.js'

interface Command {
  readonly usage: string
  readonly summary: string
  readonly options: NonNullable<ParseArgsConfig['options']>
  readonly positionals: readonly string[]
  readonly run: (out: Output, values: Values, positionals: readonly string[]) => number | Promise<number>
}

type Values = Readonly<Record<string, string | boolean | undefined>>

const LEVELS = new Set(['base', 'writable', 'full'])

const COMMANDS: Readonly<Record<string, Command>> = {
  show: {
    usage: 'procsnap show FILE [--registers | --backtrace | --maps] [--thread N] [--memory LOCATION [--length N]]',
    summary:
      'print a snapshot or a core file (its stop, registers, backtrace and maps, or memory at a location), or a golden',
    options: {
      registers: { type: 'boolean' },
      backtrace: { type: 'boolean' },
      maps: { type: 'boolean' },
      thread: { type: 'string' },
      memory: { type: 'string' },
      length: { type: 'string' },
    },
    positionals: ['FILE'],
    run: (out, v, [file = '']) =>
      show(out, file, {
        ...(v.thread !== undefined && { thread: integer(v.thread, '--thread') }),
        ...(typeof v.memory === 'string' && { memory: v.memory }),
        ...(v.length !== undefined && { length: integer(v.length, '--length') }),
        ...(v.registers ? { part: 'registers' as const } : v.backtrace ? { part: 'backtrace' as const } : {}),
        ...(v.maps && { part: 'maps' as const }),
      }),
  },
  diff: {
    usage: 'procsnap diff A B',
    summary: 'the structured diff of two snapshots (exit 1 when they differ)',
    options: {},
    positionals: ['A', 'B'],
    run: (out, _v, [a = '', b = '']) => diff(out, a, b),
  },
  report: {
    usage: 'procsnap report FILE [--json]',
    summary: 'the crash report of a snapshot taken at a fatal signal',
    options: { json: { type: 'boolean' } },
    positionals: ['FILE'],
    run: (out, v, [file = '']) => report(out, file, v.json === true),
  },
  signature: {
    usage: 'procsnap signature FILE [--verbose]',
    summary: "the crash's signature (16 hex digits); --verbose adds what it signs",
    options: { verbose: { type: 'boolean', short: 'v' } },
    positionals: ['FILE'],
    run: (out, v, [file = '']) => signature(out, file, v.verbose === true),
  },
  core: {
    usage: 'procsnap core FILE -o CORE',
    summary: 'write a snapshot as an ELF core file that gdb reads',
    options: { output: { type: 'string', short: 'o' } },
    positionals: ['FILE'],
    run: (out, v, [file = '']) => core(out, file, required(v.output, '-o CORE')),
  },
  import: {
    usage: 'procsnap import CORE -o FILE [--exe PATH]',
    summary: "read an ELF core file (the kernel's, gdb's gcore, procsnap's) and write it as a snapshot file",
    options: { output: { type: 'string', short: 'o' }, exe: { type: 'string' } },
    positionals: ['CORE'],
    run: (out, v, [file = '']) =>
      importCore(out, file, required(v.output, '-o FILE'), typeof v.exe === 'string' ? v.exe : undefined),
  },
  review: {
    usage: 'procsnap review [DIR] [--accept-all | --reject-all]',
    summary: 'review the goldens a local run found changed (.snap.new): accept, reject or skip each',
    options: { 'accept-all': { type: 'boolean' }, 'reject-all': { type: 'boolean' } },
    positionals: ['[DIR]'],
    run: (out, v, [dir = '.']) => {
      if (v['accept-all'] && v['reject-all']) throw usage('--accept-all or --reject-all, not both')
      return review(out, errStream, keys, dir, v['accept-all'] ? 'accept' : v['reject-all'] ? 'reject' : undefined)
    },
  },
  run: {
    usage:
      'procsnap run [--snapshot-on crash|exit|SYMBOL] [--level base|writable|full] [-o DIR] [--timeout MS] -- PROGRAM [ARGS...]',
    summary:
      "run a program under procsnap; at a crash (the default) write its snapshot and report; exit with the program's status",
    options: {
      'snapshot-on': { type: 'string' },
      level: { type: 'string' },
      output: { type: 'string', short: 'o' },
      timeout: { type: 'string' },
    },
    positionals: ['PROGRAM', '[ARGS...]'],
    run: (out, v, argv) => {
      const level = typeof v.level === 'string' ? v.level : 'writable'
      if (!LEVELS.has(level)) throw usage(`--level is base, writable or full, not ${level}`)
      return run(out, argv, {
        on: typeof v['snapshot-on'] === 'string' ? v['snapshot-on'] : 'crash',
        level: level as SnapshotLevel,
        dir: typeof v.output === 'string' ? v.output : '.',
        timeout: v.timeout === undefined ? 60_000 : integer(v.timeout, '--timeout'),
      })
    },
  },
}

class UsageError extends Error {}

/** Where review writes its refusals and reads its keys: main's streams (set by main). */
let errStream: Output = process.stderr
let keys: KeyInput = process.stdin

function usage(message: string): UsageError {
  return new UsageError(message)
}

function integer(value: string | boolean | undefined, name: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n)) throw usage(`${name} takes a whole number, not ${String(value)}`)
  return n
}

function required(value: string | boolean | undefined, what: string): string {
  if (typeof value !== 'string' || value === '') throw usage(`missing ${what}`)
  return value
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length))
  return (
    'procsnap: snapshots of Linux processes, from the command line\n\nUsage: procsnap <command> [options]\n\nCommands:\n' +
    Object.entries(COMMANDS)
      .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
      .join('\n') +
    "\n\nprocsnap <command> --help shows a command's options. Exit codes: 0 done, 1 differences (diff),\n" +
    "2 a wrong command line, 3 a file or program procsnap could not handle; run exits with the program's status.\n"
  )
}

/** Runs the command line `argv` (without node and the script); returns the exit code. */
export async function main(
  argv: readonly string[],
  out: Output,
  err: Output,
  input: KeyInput = process.stdin,
): Promise<number> {
  errStream = err
  keys = input
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ;(name === undefined ? err : out).write(help())
    return name === undefined ? EXIT.usage : EXIT.ok
  }
  const command = COMMANDS[name]
  if (!command) {
    err.write(`procsnap: no command ${name}\n\n${help()}`)
    return EXIT.usage
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    })
    if (values.help) {
      out.write(`Usage: ${command.usage}\n\n${command.summary}\n`)
      return EXIT.ok
    }
    const needed = command.positionals.filter((p) => !p.startsWith('[')).length
    if (
      positionals.length < needed ||
      (!command.positionals.some((p) => p.startsWith('[')) && positionals.length > needed)
    )
      throw usage(`expected ${command.positionals.join(' ')}, got ${positionals.length} argument(s)`)
    return await command.run(out, values, positionals)
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      err.write(`procsnap ${name}: ${error.message}\nUsage: ${command.usage}\n`)
      return EXIT.usage
    }
    if (error instanceof ProcsnapError) {
      err.write(`procsnap ${name}: ${error.message} (${error.code})\n`)
      return EXIT.failed
    }
    throw error
  }
}

// Run as the `procsnap` bin (not when imported by a test).
if (process.argv[1] && /procsnap$|cli\/main\.[jt]s$/.test(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2), process.stdout, process.stderr)
}
