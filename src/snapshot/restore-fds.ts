// Restore, step 2: file descriptors, as Qiling's fd save/restore does and CRIU does for files. A
// regular file's offset is set back (lseek); a regular file closed since is opened again at its fd
// (open, dup3, close) and its offset set; an fd opened since is closed. Pipes, sockets, terminals and
// devices cannot go back: the report names them (`not restored`, with the reason).
import { readFileSync, statSync } from 'node:fs'
import type { Process } from '../process/process.js'
import type { FdState } from './model.js'
import { RestoreError } from '../errors.js'

/** What restore did with one file descriptor. */
export interface FdRestore {
  readonly fd: number
  /** Its target in the snapshot (or, for one closed, now): '/tmp/data.txt', 'pipe:[123]', '/dev/pts/3'. */
  readonly target: string
  readonly action: 'unchanged' | 'seeked' | 'reopened' | 'closed' | 'not restored'
  /** Why it was not restored (or, for a new process's stdio, why it was left). */
  readonly reason?: string
}

/** The injected system calls the fds step needs, with a scratch page for paths. */
export interface FdSyscalls {
  call(nr: number, args: readonly bigint[]): Promise<bigint>
  /** Writes `path` NUL-terminated into the tracee's scratch page; returns its address. */
  path(path: string): Promise<bigint>
}

const SYS = { close: 3, lseek: 8, dup3: 292, openat: 257 } as const
const AT_FDCWD = -100n
const O_CREAT = 0o100
const O_EXCL = 0o200
const O_TRUNC = 0o1000
const O_CLOEXEC = 0o2000000

/** An fd's offset (fdinfo's pos). */
function offsetOf(pid: number, fd: number): bigint {
  const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1')
  return BigInt(/^pos:\s+(\d+)/m.exec(info)?.[1] ?? '0')
}

const S_IFMT = 0o170000
const S_IFBLK = 0o060000

/**
 * Whether the offset of the snapshot's fd can have moved in a way that matters: a path that is not a
 * pipe, socket, terminal nor character device (those have no offset to set back; a block device has).
 */
function hasOffset(want: FdState): boolean {
  return want.target.startsWith('/') && (!want.stat || (want.stat.mode & S_IFMT) === S_IFBLK)
}

/** A regular file this process can see at `target` (not a pipe, socket, terminal, device, or deleted file). */
function isRegularFile(proc: Process, target: string): boolean {
  if (!target.startsWith('/') || target.endsWith(' (deleted)')) return false
  try {
    return statSync(proc.hostFile(target)).isFile()
  } catch {
    return false
  }
}

/** A system call of the restore that failed in the process (`result`: -errno). */
export function restoreFailure(what: string, result: bigint): RestoreError {
  return new RestoreError(
    'ERR_RESTORE_FAILED',
    `${what} failed in the process (errno ${-result}); the restore stopped there.`,
  )
}

/** Puts the snapshot's fds back as far as they can go; returns what happened to each. */
export async function restoreFds(
  proc: Process,
  snapshotFds: readonly FdState[],
  newProcess: boolean,
  sys: FdSyscalls,
): Promise<FdRestore[]> {
  const live = proc.openFds()
  if (!live)
    throw new RestoreError(
      'ERR_RESTORE_PROCESS',
      `The open files of process ${proc.pid} cannot be listed (/proc/${proc.pid}/fd): it is gone, or /proc is not this process's.`,
    )
  const out: FdRestore[] = []
  for (const want of snapshotFds) {
    const now = live.get(want.fd)
    live.delete(want.fd)
    if (newProcess && want.fd <= 2 && now !== undefined) {
      const reason = "the new process's own stdio (launch's options)"
      out.push({ fd: want.fd, target: now, action: 'unchanged', reason })
      continue
    }
    if (now === want.target) {
      // The same target: only its offset can differ (read for files, skipped for what has none).
      if (!hasOffset(want) || offsetOf(proc.pid, want.fd) === want.offset)
        out.push({ fd: want.fd, target: want.target, action: 'unchanged' })
      else if (isRegularFile(proc, want.target)) {
        const r = await sys.call(SYS.lseek, [BigInt(want.fd), want.offset, 0n])
        if (r < 0n) throw restoreFailure(`lseek(${want.fd}) of ${want.target}`, r)
        out.push({ fd: want.fd, target: want.target, action: 'seeked' })
      } else
        out.push({
          fd: want.fd,
          target: want.target,
          action: 'not restored',
          reason: 'its offset moved and it is not a regular file',
        })
      continue
    }
    const regular = isRegularFile(proc, want.target)
    if (!regular) {
      const reason = now
        ? `it now refers to ${now}, and ${want.target} is not a regular file that can be opened again`
        : `it was closed, and ${want.target} is not a regular file that can be opened again (a pipe, socket, terminal or device)`
      out.push({ fd: want.fd, target: want.target, action: 'not restored', reason })
      continue
    }
    const flags = want.flags & ~(O_CREAT | O_EXCL | O_TRUNC)
    const opened = await sys.call(SYS.openat, [AT_FDCWD, await sys.path(want.target), BigInt(flags), 0n])
    if (opened < 0n)
      throw new RestoreError(
        'ERR_RESTORE_FILE',
        `fd ${want.fd} of the snapshot is ${want.target}, which the process cannot open again (errno ${-opened}): ` +
          'was it removed or made unreadable since the snapshot?',
      )
    if (opened !== BigInt(want.fd)) {
      const r = await sys.call(SYS.dup3, [opened, BigInt(want.fd), BigInt(flags & O_CLOEXEC)])
      await sys.call(SYS.close, [opened])
      if (r < 0n) throw restoreFailure(`dup3 to fd ${want.fd}`, r)
    }
    const r = await sys.call(SYS.lseek, [BigInt(want.fd), want.offset, 0n])
    if (r < 0n) throw restoreFailure(`lseek(${want.fd}) of ${want.target}`, r)
    out.push({ fd: want.fd, target: want.target, action: 'reopened' })
  }
  for (const [fd, now] of [...live].sort((a, b) => a[0] - b[0])) {
    const r = await sys.call(SYS.close, [BigInt(fd)])
    if (r < 0n) throw restoreFailure(`close(${fd})`, r)
    out.push({ fd, target: now, action: 'closed' })
  }
  return out.sort((a, b) => a.fd - b.fd)
}
