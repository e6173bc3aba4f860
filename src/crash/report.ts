// A crash report from a snapshot taken at a fatal signal, as Pigweed's pw_snapshot tooling makes
// one: the cause in words, the crashing thread's registers and backtrace, the other threads'
// backtraces, memory around the fault address and the stack pointer, the modules by build-id, and
// the program's metadata; with a signature (signature.ts) to deduplicate crashes by.
import { closeSync, openSync, readSync } from 'node:fs'
import { hostname, release } from 'node:os'
import { ProcsnapError } from '../errors.js'
import { X86_GENERAL } from '../snapshot/arch-info.js'
import type { Frame } from '../snapshot/model.js'
import { ProcessSnapshot, type Snapshot } from '../snapshot/snapshot.js'
import { faultAccess, type Access } from './access.js'
import { crashSignature, frameName, isRuntimeFrame, signatureFrames } from './signature.js'
import { CRASH_SIGNALS, SIGNAL_NOUNS, codeOf } from './signals.js'

/** Bytes of memory a report shows around the fault address and from the stack pointer. */
const AROUND_FAULT = 64
const STACK_BYTES = 128
const PT_LOAD = 1

export interface CrashMemory {
  readonly label: 'fault address' | 'stack'
  readonly address: bigint
  readonly bytes: Uint8Array
}

export interface CrashModule {
  readonly name: string
  readonly path: string
  readonly start: bigint
  readonly buildId: string | undefined
}

export interface CrashReport {
  /** 'SIGSEGV: write to 0x0 (address not mapped) in crashes!store_null'. */
  readonly cause: string
  readonly signal: string
  readonly signo: number
  /** si_code, and its name and meaning when known ('SEGV_MAPERR', 'address not mapped'). */
  readonly code: number
  readonly codeName: string | undefined
  readonly codeMeaning: string | undefined
  /** si_addr of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE). */
  readonly faultAddress: bigint | undefined
  /** What the faulting instruction did at the fault address, when its encoding says. */
  readonly access: Access | undefined
  /** The message the C library left for an abort (glibc's __abort_msg: a failed assert, the stack protector, _FORTIFY_SOURCE). */
  readonly abortMessage: string | undefined
  /**
   * Where it crashed, as module!function: the faulting frame, or for an abort the first frame
   * outside the C and C++ runtimes (the caller, for a jump outside every module).
   */
  readonly at: string | undefined
  /** 16 hex digits: the same for the same crash across ASLR, rebuilds and machines (see signature.ts). */
  readonly signature: string
  /** What the signature hashes: the signal and code, and the signing frames. */
  readonly signatureText: string
  /** Index (creation order, from 1) of the thread that crashed. */
  readonly thread: number
  /** Its general registers. */
  readonly registers: Readonly<Record<string, bigint>>
  readonly backtrace: readonly Frame[]
  /** Every other thread's backtrace. */
  readonly threads: readonly { readonly index: number; readonly tid: number; readonly backtrace: readonly Frame[] }[]
  /** What the snapshot holds around the fault address and from the stack pointer. */
  readonly memory: readonly CrashMemory[]
  readonly modules: readonly CrashModule[]
  /** What pw_snapshot keeps of the device and build: program, arguments, pid, time of capture, and where the report was made. */
  readonly metadata: {
    readonly program: string
    readonly argv: readonly string[]
    readonly pid: number
    readonly capturedAt: string
    readonly host: string
    readonly kernel: string
  }
}

/**
 * The crash report of a snapshot taken at a fatal signal (a 'signal' stop of SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT, SIGTRAP or SIGSYS). Anything else is ERR_BAD_ARGUMENT. A 'writable'
 * snapshot is enough for all of it (the faulting instruction is read from the ELF file on disk when
 * the snapshot does not hold the text); a 'base' one has no abort message nor memory.
 */
export function crashReport(snapshot: Snapshot): CrashReport {
  if (!(snapshot instanceof ProcessSnapshot))
    throw new ProcsnapError('ERR_BAD_ARGUMENT', 'crashReport takes a snapshot of the whole process, not of a thread.')
  const stop = snapshot.stop
  if (stop?.kind !== 'signal' || !CRASH_SIGNALS.has(stop.signal))
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `The snapshot was taken at ${stop ? `a ${stop.kind} stop` : 'no stop'}${stop?.kind === 'signal' ? ` (${stop.signal})` : ''}, ` +
        `not at a crash (${[...CRASH_SIGNALS].join(', ')}): take it when cont() returns { kind: 'signal' } for one of those, ` +
        "or launch with { crash: 'snapshot' }.",
    )
  const crashed = snapshot.threads.find((t) => t.index === stop.thread) ?? snapshot.threads[0]
  if (!crashed) throw new ProcsnapError('ERR_BAD_ARGUMENT', 'The snapshot has no thread.')
  const regs = crashed.regs
  const code = codeOf(stop.signal, stop.code)
  const selfSent = stop.code <= 0 // kill, tgkill (raise, abort): not a fault of an instruction
  const faultAddress = selfSent ? undefined : stop.faultAddress
  const access =
    stop.signal === 'SIGSEGV' || stop.signal === 'SIGBUS'
      ? faultAccess(codeAt(snapshot, stop.pc), stop.pc, faultAddress, { rsp: regs.rsp, rdi: regs.rdi })
      : undefined
  const abortMessage = stop.signal === 'SIGABRT' ? readAbortMessage(snapshot) : undefined
  const backtrace = jumpedFrom(snapshot, crashed.backtrace, access, regs.rsp)
  const frames = signatureFrames(backtrace, selfSent)
  const signature = crashSignature(stop.signal, selfSent ? undefined : code?.name, frames)
  const what = describe(snapshot, stop.signal, code, faultAddress, access, abortMessage, regs.rsp)
  const where = placeOf(backtrace, selfSent)
  const at = crashFrame(backtrace, selfSent)
  const general = snapshot.arch === 'x86_64' ? GENERAL : []
  return {
    cause: `${stop.signal}: ${what}${where}`,
    signal: stop.signal,
    signo: stop.signo,
    code: stop.code,
    codeName: code?.name,
    codeMeaning: code?.meaning,
    faultAddress,
    access,
    abortMessage,
    at: at && frameName(at),
    signature: signature.id,
    signatureText: signature.text,
    thread: crashed.index,
    registers: Object.fromEntries(general.map((name) => [name, regs[name] ?? 0n])),
    backtrace,
    threads: snapshot.threads
      .filter((t) => t !== crashed)
      .map((t) => ({ index: t.index, tid: t.tid, backtrace: t.backtrace })),
    memory: [
      ...held(
        snapshot,
        'fault address',
        faultAddress === undefined ? undefined : (faultAddress & ~15n) - BigInt(AROUND_FAULT / 2),
        AROUND_FAULT,
      ),
      ...held(snapshot, 'stack', regs.rsp, STACK_BYTES),
    ],
    modules: snapshot.modules().map((m) => ({
      name: m.name,
      path: m.path,
      start: m.start,
      buildId: snapshot.maps.find((map) => map.path === m.path && map.buildId)?.buildId,
    })),
    metadata: {
      program: snapshot.exe,
      argv: snapshot.argv,
      pid: snapshot.pid,
      capturedAt: snapshot.createdAt,
      host: hostname(),
      kernel: release(),
    },
  }
}

/** The registers a report shows: the general ones, without segment selectors and orig_rax. */
const GENERAL = X86_GENERAL.filter((name) => !['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'orig_rax'].includes(name))

/** The crash in words, without its place: 'write to 0x0 (address not mapped)', 'assertion failed: ...'. */
function describe(
  snapshot: ProcessSnapshot,
  signal: string,
  code: { name: string; meaning: string } | undefined,
  fault: bigint | undefined,
  access: Access | undefined,
  abortMessage: string | undefined,
  rsp: bigint | undefined,
): string {
  const hex = (v: bigint): string => `0x${v.toString(16)}`
  if (signal === 'SIGABRT') {
    const message = abortMessage?.trim()
    if (!message) return 'abort()'
    if (/stack smashing detected/.test(message)) return `stack smashing detected (the stack protector): ${message}`
    if (/buffer overflow detected/.test(message)) return `buffer overflow detected (_FORTIFY_SOURCE): ${message}`
    if (/Assertion .* failed/.test(message)) return `assertion failed: ${message}`
    return `abort(): ${message}`
  }
  if (signal === 'SIGTRAP' && code?.name === 'SI_KERNEL')
    return "a stray int3 (a breakpoint instruction that is not procsnap's)"
  if ((signal === 'SIGSEGV' || signal === 'SIGBUS') && fault !== undefined) {
    if (signal === 'SIGSEGV' && code?.name === 'SI_KERNEL')
      return 'general protection fault (a non-canonical address, or an instruction this mode forbids)'
    const meaning = code ? ` (${code.meaning})` : ''
    if (rsp !== undefined && isStackOverflow(snapshot, fault, rsp))
      return `stack overflow: ${access ?? 'access'} at ${hex(fault)}, below the stack${meaning}`
    const verb =
      access === 'write' ? 'write to' : access === 'read' ? 'read from' : access === 'execute' ? 'jump to' : 'access to'
    return `${verb} ${hex(fault)}${meaning}`
  }
  return code ? code.meaning : (SIGNAL_NOUNS[signal] ?? signal)
}

/**
 * A call through a bad pointer faults at the target, outside every module, where no unwinding
 * information is: the caller is the return address the call just pushed. The backtrace is then
 * the target and that caller.
 */
function jumpedFrom(
  snapshot: ProcessSnapshot,
  backtrace: readonly Frame[],
  access: Access | undefined,
  rsp: bigint | undefined,
): readonly Frame[] {
  const top = backtrace[0]
  if (access !== 'execute' || !top || top.module !== undefined || backtrace.length > 1 || rsp === undefined)
    return backtrace
  let returnAddress: bigint
  try {
    returnAddress = Buffer.from(snapshot.memory.read(rsp, 8)).readBigUInt64LE(0)
  } catch {
    return backtrace
  }
  const location = snapshot.symbolize(returnAddress)
  const named = /^([^!+]+)!([^+]+)(?:\+0x([0-9a-f]+))?$/.exec(location)
  if (!named) return backtrace
  const caller: Frame = {
    pc: returnAddress,
    module: named[1],
    symbol: named[2],
    offset: BigInt(`0x${named[3] ?? '0'}`),
    location,
    via: 'fp',
  }
  return [top, caller]
}

/** A fault within a page of the stack pointer, below the stack's map (or in a thread stack's guard). */
function isStackOverflow(snapshot: ProcessSnapshot, fault: bigint, rsp: bigint): boolean {
  if (fault > rsp + 4096n || fault + 65536n < rsp) return false
  const map = snapshot.maps.find((m) => m.start <= fault && fault < m.end)
  if (!map) return snapshot.maps.some((m) => m.path === '[stack]' && fault < m.start && m.start - fault <= 1n << 20n)
  return map.perms.startsWith('---') // a guard page
}

/**
 * Where the crash is, as ' in module!function': the first frame outside the runtimes for an abort;
 * the faulting frame for a fault (with its caller outside the runtimes when it is in one, or
 * outside every module: a jump through a bad pointer).
 */
function placeOf(backtrace: readonly Frame[], selfSent: boolean): string {
  const own = backtrace.find((f) => f.module !== undefined && !isRuntimeFrame(f))
  const top = backtrace[0]
  if (!top) return ''
  if (selfSent) return ` in ${frameName(own ?? top)}`
  if (top.module === undefined) return own ? `, called from ${frameName(own)}` : ''
  if (!isRuntimeFrame(top) || !own) return ` in ${frameName(top)}`
  return ` in ${frameName(top)}, called from ${frameName(own)}`
}

/** The frame a crash is said to be in: see CrashReport.at. */
function crashFrame(backtrace: readonly Frame[], selfSent: boolean): Frame | undefined {
  const own = backtrace.find((f) => f.module !== undefined && !isRuntimeFrame(f))
  const top = backtrace[0]
  if (selfSent || top?.module === undefined) return own ?? top
  return top
}

/** What the snapshot holds of [address, address + length), or nothing. */
function held(
  snapshot: ProcessSnapshot,
  label: CrashMemory['label'],
  address: bigint | undefined,
  length: number,
): CrashMemory[] {
  if (address === undefined || address < 0n) return []
  try {
    return [{ label, address, bytes: snapshot.memory.read(address, length) }]
  } catch {
    return [] // not mapped, or not held at this level
  }
}

/** The bytes at `pc`: from the snapshot, or from the module's ELF file on disk (a 'writable' snapshot holds no text). */
function codeAt(snapshot: ProcessSnapshot, pc: bigint): Uint8Array | undefined {
  try {
    return snapshot.memory.read(pc, 16)
  } catch {
    // read it from the file below
  }
  const module = snapshot.modules().find((m) => m.start <= pc && pc < m.end)
  const elf = module?.elf
  if (!module || !elf) return undefined
  const vaddr = pc - module.bias
  const segment = elf.segments.find((s) => s.type === PT_LOAD && s.vaddr <= vaddr && vaddr < s.vaddr + s.filesz)
  if (!segment) return undefined
  const bytes = new Uint8Array(16)
  let fd: number | undefined
  try {
    fd = openSync(elf.path, 'r')
    const n = readSync(fd, bytes, 0, 16, Number(segment.offset + (vaddr - segment.vaddr)))
    return bytes.subarray(0, n)
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** glibc's __abort_msg (struct abort_msg_s { unsigned size; char msg[]; }), which assert and __libc_message fill before abort(). */
function readAbortMessage(snapshot: ProcessSnapshot): string | undefined {
  try {
    const pointer = Buffer.from(snapshot.memory.read('libc.so.6!__abort_msg', 8)).readBigUInt64LE(0)
    if (pointer === 0n) return undefined
    const size = Buffer.from(snapshot.memory.read(pointer, 4)).readUInt32LE(0)
    const text = Buffer.from(snapshot.memory.read(pointer + 4n, Math.min(Math.max(size - 4, 0), 4096)))
    const end = text.indexOf(0)
    return text.toString('utf8', 0, end < 0 ? text.length : end)
  } catch {
    return undefined // no glibc, a 'base' snapshot, or not set
  }
}

/** The report as text, for people: cause, signature, the crashing thread, registers, memory, other threads, modules. */
export function formatCrashReport(report: CrashReport): string {
  const hex = (v: bigint): string => `0x${v.toString(16)}`
  const lines: string[] = [report.cause, `signature ${report.signature} (${report.signatureText})`, '']
  const m = report.metadata
  lines.push(`program ${m.program} ${m.argv.slice(1).join(' ')}`.trimEnd())
  lines.push(`pid ${m.pid}, captured ${m.capturedAt}, reported on ${m.host} (Linux ${m.kernel})`, '')
  lines.push(`thread ${report.thread} (crashed)`)
  report.backtrace.forEach((f, i) => lines.push(`  #${i} ${f.location}`))
  const names = Object.keys(report.registers)
  for (let i = 0; i < names.length; i += 4)
    lines.push(
      `  ${names
        .slice(i, i + 4)
        .map((n) => `${n.padEnd(7)} ${hex(report.registers[n] ?? 0n).padEnd(18)}`)
        .join(' ')
        .trimEnd()}`,
    )
  for (const region of report.memory) {
    lines.push('', `memory at the ${region.label}`)
    for (let at = 0; at < region.bytes.length; at += 16) {
      const row = Buffer.from(region.bytes.subarray(at, at + 16))
      lines.push(
        `  ${hex(region.address + BigInt(at)).padStart(14)}  ${row.toString('hex').replace(/(..)(?!$)/g, '$1 ')}`,
      )
    }
  }
  for (const t of report.threads) {
    lines.push('', `thread ${t.index} (tid ${t.tid})`)
    t.backtrace.forEach((f, i) => lines.push(`  #${i} ${f.location}`))
  }
  lines.push('', 'modules')
  for (const mod of report.modules)
    lines.push(`  ${hex(mod.start).padStart(14)}  ${mod.buildId ?? '(no build-id)'}  ${mod.path}`)
  return `${lines.join('\n')}\n`
}
