// The PT_NOTE segment of a core file, built in memory (a few KiB a thread): per thread NT_PRSTATUS,
// NT_FPREGSET and NT_X86_XSTATE; for the process NT_PRPSINFO, NT_SIGINFO (a signal stop), NT_AUXV and
// NT_FILE, in the kernel's order (fs/binfmt_elf.c: the stopped thread first, the process notes after its status).
import { basename } from 'node:path'
import { INNER_CWD } from '../process/isolate.js'
import type { CoreSource, CoreThread } from './types.js'
import { x86_64 } from '../native/arch/x86_64.js'
import { FILE_NOTE_PAGE, NT, PRPSINFO, PRSTATUS, SIGINFO, XSAVE } from './layout.js'
import { encodeCoreXState } from './xstate.js'

const SIGTRAP = 5

/** One note: Elf64_Nhdr (namesz, descsz, type), the name with its NUL, the descriptor; each padded to 4 bytes. */
function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = Buffer.from(`${name}\0`, 'latin1')
  const pad = (n: number): number => (n + 3) & ~3
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(desc.length))
  const view = new DataView(out.buffer)
  view.setUint32(0, nameBytes.length, true)
  view.setUint32(4, desc.length, true)
  view.setUint32(8, type >>> 0, true)
  out.set(nameBytes, 12)
  out.set(desc, 12 + pad(nameBytes.length))
  return out
}

/** The signal a thread stopped with, as its status note says: the stop's signal, SIGTRAP at a breakpoint or step, else none. */
function stopSignal(data: CoreSource, thread: CoreThread): { signo: number; code: number } {
  const stop = data.stop
  if (!stop || stop.thread !== thread.index) return { signo: 0, code: 0 }
  if (stop.kind === 'signal') return { signo: stop.signo, code: stop.code }
  if (stop.kind === 'breakpoint' || stop.kind === 'step') return { signo: SIGTRAP, code: 0 }
  return { signo: 0, code: 0 }
}

function prstatus(data: CoreSource, thread: CoreThread, tid: number, fpvalid: boolean): Uint8Array {
  const desc = new Uint8Array(PRSTATUS.size)
  const view = new DataView(desc.buffer)
  const { signo, code } = stopSignal(data, thread)
  view.setInt32(PRSTATUS.signo, signo, true)
  view.setInt32(PRSTATUS.code, code, true)
  view.setInt16(PRSTATUS.cursig, signo, true)
  view.setInt32(PRSTATUS.pid, tid, true)
  view.setInt32(PRSTATUS.pgrp, data.ownPid ?? data.pid, true)
  // elf_gregset_t is struct user_regs_struct: the order PTRACE_GETREGS gives
  x86_64.registers.forEach((name, i) =>
    view.setBigUint64(PRSTATUS.reg + 8 * i, BigInt.asUintN(64, thread.regs[name] ?? 0n), true),
  )
  view.setInt32(PRSTATUS.fpvalid, fpvalid ? 1 : 0, true)
  return note('CORE', NT.prstatus, desc)
}

/** NUL-terminated text cut to fit `size` bytes. */
function cString(into: Uint8Array, at: number, size: number, text: string): void {
  into.set(Buffer.from(text, 'utf8').subarray(0, size - 1), at)
}

function prpsinfo(data: CoreSource): Uint8Array {
  const desc = new Uint8Array(PRPSINFO.size)
  const view = new DataView(desc.buffer)
  // A traced, stopped process: state 3, 'T' ("RSDTZW"[state], fs/binfmt_elf.c fill_psinfo).
  desc[PRPSINFO.state] = 3
  desc[PRPSINFO.sname] = 'T'.charCodeAt(0)
  view.setInt32(PRPSINFO.pid, data.ownPid ?? data.pid, true)
  view.setInt32(PRPSINFO.pgrp, data.ownPid ?? data.pid, true)
  cString(desc, PRPSINFO.fname, PRPSINFO.fnameSize, basename(data.exe))
  cString(desc, PRPSINFO.psargs, PRPSINFO.psargsSize, data.argv.join(' '))
  return note('CORE', NT.prpsinfo, desc)
}

function siginfo(data: CoreSource): Uint8Array | undefined {
  const stop = data.stop
  if (stop?.kind !== 'signal') return undefined
  const desc = new Uint8Array(SIGINFO.size)
  const view = new DataView(desc.buffer)
  view.setInt32(SIGINFO.signo, stop.signo, true)
  view.setInt32(SIGINFO.code, stop.code, true)
  if (stop.faultAddress !== undefined) view.setBigUint64(SIGINFO.addr, stop.faultAddress, true)
  return note('CORE', NT.siginfo, desc)
}

function auxv(data: CoreSource): Uint8Array {
  const entries = data.auxv.filter((e) => e.type !== 0)
  const desc = new Uint8Array(16 * (entries.length + 1))
  const view = new DataView(desc.buffer)
  entries.forEach((e, i) => {
    view.setBigUint64(16 * i, BigInt(e.type), true)
    view.setBigUint64(16 * i + 8, BigInt.asUintN(64, e.value), true)
  })
  return note('CORE', NT.auxv, desc)
}

/**
 * A file's path as gdb, on the host, finds it: a program isolated in namespaces of its own (launch's
 * isolate) sees the directory it was launched from as INNER_CWD (regions.ts reads its files the same way).
 */
export function hostPath(data: CoreSource, path: string): string {
  return data.ownPid !== undefined && path.startsWith(`${INNER_CWD}/`)
    ? process.cwd() + path.slice(INNER_CWD.length)
    : path
}

/** NT_FILE: count, page size, then (start, end, offset in pages) per file map, then their paths, NUL-terminated. */
function files(data: CoreSource): Uint8Array {
  const mapped = data.maps.filter((m) => m.inode !== 0 && m.path.startsWith('/'))
  const names = mapped.map((m) => Buffer.from(`${hostPath(data, m.path)}\0`, 'utf8'))
  const head = 16 + 24 * mapped.length
  const desc = new Uint8Array(head + names.reduce((sum, n) => sum + n.length, 0))
  const view = new DataView(desc.buffer)
  view.setBigUint64(0, BigInt(mapped.length), true)
  view.setBigUint64(8, BigInt(FILE_NOTE_PAGE), true)
  mapped.forEach((m, i) => {
    view.setBigUint64(16 + 24 * i, m.start, true)
    view.setBigUint64(24 + 24 * i, m.end, true)
    view.setBigUint64(32 + 24 * i, m.offset / BigInt(FILE_NOTE_PAGE), true)
  })
  let at = head
  for (const name of names) {
    desc.set(name, at)
    at += name.length
  }
  return note('CORE', NT.file, desc)
}

function threadNotes(data: CoreSource, thread: CoreThread, tid: number, process: Uint8Array[]): Uint8Array[] {
  const area = encodeCoreXState(thread.regs, data.cpu)
  const out = [
    prstatus(data, thread, tid, true),
    ...process,
    note('CORE', NT.fpregset, area.subarray(0, XSAVE.legacySize)),
  ]
  if (area.length > XSAVE.legacySize) out.push(note('LINUX', NT.x86Xstate, area))
  return out
}

/**
 * Every note of the core, the stopped thread's first (gdb takes the first status for the current
 * thread and the signal); `tids` gives a thread's id as the program sees it (tids.ts), by index.
 */
export function coreNotes(data: CoreSource, tids: ReadonlyMap<number, number>): Uint8Array[] {
  const first = data.stop?.thread ?? data.current
  const ordered = [...data.threads].sort((a, b) => Number(b.index === first) - Number(a.index === first))
  const sig = siginfo(data)
  const process = [prpsinfo(data), ...(sig ? [sig] : []), auxv(data), files(data)]
  return ordered.flatMap((thread, i) =>
    threadNotes(data, thread, tids.get(thread.index) ?? thread.tid, i === 0 ? process : []),
  )
}
