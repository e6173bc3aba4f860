// A process's open file descriptors, from /proc/PID/fd opened once: getdents64 lists them and
// readlinkat names their targets relative to it, so listing them again (a restore loop does, each
// time) costs no path walk through /proc and no Node fs call.
import { lastErrno, sys } from './libc.js'

const O_RDONLY_DIRECTORY_CLOEXEC = 0o200000 | 0o2000000
const SEEK_SET = 0
/** struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name. */
const RECLEN = 16
const NAME = 19

export class FdDirectory {
  private readonly pid: number
  private fd: number | undefined
  private entries = Buffer.alloc(4096)
  private readonly link = Buffer.alloc(4096)

  constructor(pid: number) {
    this.pid = pid
  }

  /** fd -> target ('/dev/null', 'pipe:[123]'), or undefined when /proc/PID/fd cannot be read (the process is gone). */
  list(): Map<number, string> | undefined {
    const dir = (this.fd ??= sys.open(`/proc/${this.pid}/fd`, O_RDONLY_DIRECTORY_CLOEXEC, 0))
    if (dir < 0) {
      this.fd = undefined
      return undefined
    }
    if (Number(sys.lseek(dir, 0, SEEK_SET)) < 0) return undefined
    const names: string[] = []
    for (;;) {
      const n = Number(sys.getdents64(dir, this.entries, this.entries.length))
      if (n < 0 && lastErrno() === 22 /* EINVAL: the buffer is too small for an entry */) {
        this.entries = Buffer.alloc(this.entries.length * 2)
        continue
      }
      if (n <= 0) break
      for (let at = 0; at < n; at += this.entries.readUInt16LE(at + RECLEN)) {
        const end = this.entries.indexOf(0, at + NAME)
        const name = this.entries.toString('latin1', at + NAME, end)
        if (name !== '.' && name !== '..') names.push(name)
      }
    }
    const fds = new Map<number, string>()
    for (const name of names) {
      const length = Number(sys.readlinkat(dir, name, this.link, this.link.length))
      if (length >= 0) fds.set(Number(name), this.link.toString('utf8', 0, length)) // < 0: closed meanwhile
    }
    return fds
  }

  close(): void {
    if (this.fd !== undefined) sys.close(this.fd)
    this.fd = undefined
  }
}
