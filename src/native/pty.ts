// Pseudo-terminals for the tracee's stdout and stderr. Raw mode, so the bytes read are the bytes
// written (no \n -> \r\n, no echo), and a fixed 80x24 window, so programs that size their output
// to the terminal print the same on every machine. Both ends are opened O_NOCTTY and close-on-exec.
import { lastErrno, sys } from './libc.js'

export interface Pty {
  /** Our end: nonblocking, read by the event loop and by synchronous drains at stops. */
  master: number
  /** The program's end (blocking, as a terminal is); closed by us once the program has a copy. */
  slave: number
  /** '/dev/pts/N'. */
  path: string
}

/** Which call failed, and its errno. */
export interface PtyFailure {
  call: string
  errno: number
}

export const PTY_ROWS = 24
export const PTY_COLUMNS = 80

const O_RDWR = 2
const O_NOCTTY = 0o400
const O_NONBLOCK = 0o4000
const O_CLOEXEC = 0o2000000
const TCSANOW = 0
const TIOCSWINSZ = 0x5414 // the same number on x86_64 and aarch64 (asm-generic)

const nameBuf = Buffer.alloc(128)
const termios = Buffer.alloc(256) // struct termios is 60 bytes on glibc
const winsize = Buffer.alloc(8) // ws_row, ws_col, ws_xpixel, ws_ypixel: four u16

/** Opens a raw 80x24 pseudo-terminal pair, or says which call failed. */
export function openPty(): Pty | PtyFailure {
  const master = sys.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)
  if (master < 0) return { call: 'posix_openpt(/dev/ptmx)', errno: lastErrno() }
  let slave = -1
  const fail = (call: string, errno = lastErrno()): PtyFailure => {
    if (slave >= 0) sys.close(slave)
    sys.close(master)
    return { call, errno }
  }
  if (sys.grantpt(master) !== 0) return fail('grantpt')
  if (sys.unlockpt(master) !== 0) return fail('unlockpt')
  const named = sys.ptsname_r(master, nameBuf, nameBuf.length) // returns the error number itself
  if (named !== 0) return fail('ptsname_r', named)
  const path = nameBuf.toString('latin1', 0, nameBuf.indexOf(0))
  slave = sys.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC, 0)
  if (slave < 0) return fail(`open(${path})`)
  if (sys.tcgetattr(slave, termios) !== 0) return fail('tcgetattr')
  sys.cfmakeraw(termios)
  if (sys.tcsetattr(slave, TCSANOW, termios) !== 0) return fail('tcsetattr')
  winsize.fill(0)
  winsize.writeUInt16LE(PTY_ROWS, 0)
  winsize.writeUInt16LE(PTY_COLUMNS, 2)
  if (sys.ioctlBuf(slave, TIOCSWINSZ, winsize) !== 0) return fail('ioctl(TIOCSWINSZ)')
  return { master, slave, path }
}

export function isPtyFailure(r: Pty | PtyFailure): r is PtyFailure {
  return 'call' in r
}
