// Tracees of a worker thread that ended without running its exit hooks (Vitest's threads pool
// terminates its workers: no 'exit' event there). PTRACE_O_EXITKILL kills them with their tracer
// thread, but their zombies pass to another thread of this process and nobody waits for them. So
// each worker thread notes its live tracees in a per-process folder (tmpfs), one empty file per
// tracee named <tracer tid>-<pid>-<group>, and any later launch, in any thread, reaps the zombies
// of tracer threads that are gone. Only a dead tracer's tracees are touched: a live one's waits
// are never stolen. The main thread needs none of this: its exit hook reaps.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMainThread } from 'node:worker_threads'
import { waitNoHang } from '../native/ptrace.js'

const BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
const DIR = join(BASE, `procsnap-${process.pid}`)
const ENTRY = /^(\d+)-(\d+)-(\d+)$/

/** This thread's kernel tid ('<pid>/task/<tid>'). */
function ownTid(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop())
}

let tid: number | undefined
let prepared = false

/** Creates this process's folder once, removing those of processes that are gone. */
function prepare(): void {
  if (prepared) return
  prepared = true
  mkdirSync(DIR, { recursive: true, mode: 0o700 })
  for (const name of readdirSync(BASE)) {
    const pid = /^procsnap-(\d+)$/.exec(name)?.[1]
    if (pid && !existsSync(`/proc/${pid}`)) rmSync(join(BASE, name), { recursive: true, force: true })
  }
}

function entry(pid: number, group: number): string {
  tid ??= ownTid()
  return join(DIR, `${tid}-${pid}-${group}`)
}

/** Notes a worker thread's new tracee. */
export function noteTracee(pid: number, group: number): void {
  if (isMainThread) return
  try {
    prepare()
    writeFileSync(entry(pid, group), '')
  } catch {
    // best effort: without the note, a zombie waits for this process's exit as before
  }
}

/** The tracee ended and was reaped by its own thread. */
export function forgetTracee(pid: number, group: number): void {
  if (isMainThread) return
  rmSync(entry(pid, group), { force: true })
}

/** Reaps the tracees of worker threads that are gone; returns how many were reaped. */
export function reapOrphans(): number {
  let names: string[]
  // No folder (no worker thread noted a tracee yet): an existsSync, not a thrown ENOENT at every launch.
  if (!existsSync(DIR)) return 0
  try {
    names = readdirSync(DIR)
  } catch {
    return 0
  }
  let reaped = 0
  for (const name of names) {
    const [, tracer, pid, group] = ENTRY.exec(name)?.map(Number) ?? []
    if (!tracer || !pid || !group || existsSync(`/proc/self/task/${tracer}`)) continue
    // No signal: EXITKILL killed them with their tracer (an isolated one's init died with its parent
    // thread), and a pid signalled now might be another process's already.
    for (const target of [-group, pid]) {
      for (let w = waitNoHang(target); typeof w === 'object'; w = waitNoHang(target)) reaped++
    }
    // ECHILD is no proof: a tracer thread just gone from /proc may not have handed its children on yet.
    if (!ourChild(pid) && !ourChild(group)) rmSync(join(DIR, name), { force: true })
  }
  return reaped
}

/** Whether `pid` is still a process (a zombie included) whose parent is this process. */
function ourChild(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid
  } catch {
    return false
  }
}

/** Removes this process's folder (at its exit, from the main thread). */
export function removeOrphanFolder(): void {
  if (isMainThread) rmSync(DIR, { recursive: true, force: true })
}
