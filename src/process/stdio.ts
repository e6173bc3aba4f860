// The tracee's standard streams: stdin fed from a string or bytes and closed; stdout and stderr each
// on its own pseudo-terminal (the default: glibc then line-buffers stdout, so what a program printed
// before a crash has been written) or pipe, drained by the event loop so a chatty tracee never
// blocks on a full buffer, and drained synchronously whenever they are read. Each keeps its newest
// `outputLimit` bytes (a TailBuffer) and hands every chunk, in order, to `onOutput`.
import { constants } from 'node:buffer'
import { readSync } from 'node:fs'
import { Socket } from 'node:net'
import { ReadStream } from 'node:tty'
import { ProcsnapError, PtyError } from '../errors.js'
import { ERRNO, errnoName } from '../native/constants.js'
import { sys, lastErrno } from '../native/libc.js'
import { isPtyFailure, openPty, type PtyFailure } from '../native/pty.js'
import { TailBuffer } from './tail.js'

const O_CLOEXEC = 0o2000000

/** How a stream of the program is connected. */
export type OutputMode = 'pty' | 'pipe' | 'inherit' | 'ignore'

/**
 * Default outputLimit, per stream: far beyond what a test asserts on or a failure message can show,
 * yet a few dozen chatty tracees in parallel workers still fit in memory.
 */
export const DEFAULT_OUTPUT_LIMIT = 16 * 1024 * 1024

/** The largest outputLimit: a UTF-8 decoding has at most one UTF-16 unit per byte, so the text fits in a string. */
export const MAX_OUTPUT_LIMIT = constants.MAX_STRING_LENGTH

/** Bytes dropped from the front of proc.stdout and proc.stderr to keep them within launch's outputLimit. */
export interface OutputDropped {
  readonly stdout: number
  readonly stderr: number
}

/** launch's onOutput: given every chunk a captured stream reads, in order; the Buffer is the caller's to keep. */
export type OutputListener = (stream: 'stdout' | 'stderr', chunk: Buffer) => void

/** What a message quoting a captured stream adds when its front was dropped: '' when nothing was. */
export function droppedNote(bytes: number): string {
  return bytes === 0
    ? ''
    : ` (first ${bytes.toLocaleString('en-US')} bytes dropped: see launch's outputLimit and onOutput)`
}

/** How the program's stdout and stderr are connected, as launched. */
export interface StdioModes {
  readonly stdout: OutputMode
  readonly stderr: OutputMode
  /** Why a default pty became a pipe (no pseudo-terminal could be made here); absent otherwise. */
  readonly ptyFallback?: string
}

function pipe(): [number, number] {
  const fds = new Int32Array(2)
  if (sys.pipe2(fds, O_CLOEXEC) !== 0)
    throw new ProcsnapError('ERR_SPAWN_FAILED', `pipe2 failed (errno ${lastErrno()}): too many open files?`)
  return [fds[0] ?? -1, fds[1] ?? -1]
}

/**
 * The most a pipe takes without blocking when it is empty: one page (PIPE_BUF), the least capacity
 * the kernel gives a pipe (16 pages by default, fewer once a user holds too many pipe pages).
 */
const PIPE_AT_ONCE = 4096
/** A larger stdin, up to /proc/sys/fs/pipe-max-size's default, is written at once into a pipe grown to hold it. */
const GROWN_AT_ONCE = 1 << 20
const F_SETPIPE_SZ = 1031

/**
 * Writes stdin into its empty pipe at once and closes the write end: the program reads its input and
 * then end-of-file without waiting for the event loop, which does not turn while a wait spins (a
 * program reading stdin to its end used to wait that long for a Socket to close the fd). Over 4 KiB
 * the pipe is grown to hold it first (F_SETPIPE_SZ). False, having written nothing, when the input is
 * over 1 MiB or the pipe cannot grow (a user over the pipe limits): a Socket feeds that.
 */
function writeAtOnce(fd: number, input: string | Uint8Array): boolean {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input
  if (bytes.length > GROWN_AT_ONCE) return false
  // The kernel rounds the size up to a power-of-two number of pages and returns it, or fails (EPERM, EBUSY).
  if (bytes.length > PIPE_AT_ONCE && sys.fcntl(fd, F_SETPIPE_SZ, bytes.length) < bytes.length) return false
  // The read end is ours until the spawn (toClose): no EPIPE; the pipe is empty and large enough: no short write.
  if (bytes.length > 0 && sys.write(fd, bytes, bytes.length) !== bytes.length) {
    const errno = lastErrno()
    sys.close(fd)
    throw new ProcsnapError('ERR_SPAWN_FAILED', `writing stdin into its pipe failed (${errnoName(errno)}).`)
  }
  sys.close(fd)
  return true
}

/** What drain() reads into, shared by every stream: each read is copied out before the next. */
const scratch = Buffer.allocUnsafe(65536)

/** One captured output stream: the read end of a pipe, or the master of a pty. */
class Capture {
  private readonly fd: number
  private readonly socket: Socket
  private readonly tail: TailBuffer
  private text: string | undefined = ''
  private listener: ((chunk: Buffer) => void) | undefined

  constructor(fd: number, kind: 'pipe' | 'pty', limit: number, listener: ((chunk: Buffer) => void) | undefined) {
    this.fd = fd
    this.tail = new TailBuffer(limit)
    this.listener = listener
    // net.Socket refuses a tty fd (libuv guesses its type: ERR_INVALID_FD_TYPE). A tty.ReadStream
    // reads it on the event loop; libuv leaves a master's blocking mode alone, and we opened it
    // nonblocking, so neither the loop nor drain() ever blocks on it.
    this.socket = kind === 'pty' ? new ReadStream(fd) : new Socket({ fd, readable: true, writable: false })
    this.socket.on('data', (chunk: Buffer) => this.push(chunk))
    // A pty master reads EIO once the last copy of its slave is closed, after everything written
    // before: the end of the output. The stream is then destroyed (and its fd closed).
    this.socket.on('error', () => undefined)
    // libuv ends a stream whose fd hangs up after a short read, which is right for a pipe; a pty
    // reads at most 4 KiB at a time and the kernel may hold 64 KiB more. Read the rest before the
    // stream closes the fd: no writer is left, so this is bounded and never blocks.
    if (kind === 'pty') this.socket.prependListener('end', () => this.drain())
    this.socket.unref()
  }

  /** `chunk` is ours: a socket's read, or a copy of the scratch buffer. */
  private push(chunk: Buffer): void {
    this.tail.push(chunk)
    this.text = undefined
    this.emit(chunk)
  }

  /**
   * Hands a chunk to onOutput. What it throws must not stop the capture or the cleanup that drains
   * the stream: it is thrown again as an uncaught exception, and onOutput gets no more chunks.
   */
  private emit(chunk: Buffer): void {
    if (!this.listener) return
    try {
      this.listener(chunk)
    } catch (error) {
      this.listener = undefined
      process.nextTick(() => {
        throw error
      })
    }
  }

  /** The newest output (at most the limit, in bytes), reading what is still in the pipe or pty first. */
  read(): string {
    this.drain()
    this.text ??= this.tail.bytes().toString('utf8')
    return this.text
  }

  /** Bytes dropped from the front so far, reading what is still in the pipe or pty first. */
  dropped(): number {
    this.drain()
    return this.tail.dropped
  }

  private drain(): void {
    if (this.socket.destroyed) return
    for (;;) {
      let n = 0
      try {
        n = readSync(this.fd, scratch, 0, scratch.length, null)
      } catch {
        return // EAGAIN: nothing more for now; EIO (pty): no writer left
      }
      if (n <= 0) return
      this.push(Buffer.from(scratch.subarray(0, n)))
    }
  }

  close(): void {
    this.drain()
    this.socket.destroy()
  }
}

export interface StdioOptions {
  stdin: string | Uint8Array | undefined
  /**
   * 'pty' captures through a pseudo-terminal, 'pipe' through a pipe, into proc.stdout/proc.stderr;
   * 'inherit' shares ours; 'ignore' is /dev/null. undefined: 'pty', or a pipe when no pty can be made.
   */
  stdout: OutputMode | undefined
  stderr: OutputMode | undefined
  /** Bytes kept of each captured stream: the newest, the older ones dropped; undefined: DEFAULT_OUTPUT_LIMIT. */
  outputLimit: number | undefined
  onOutput: OutputListener | undefined
}

let warnedFallback = false

export class Stdio {
  /** Parent-side fds to give the child as 0, 1, 2 (undefined: /dev/null). */
  readonly childFds: [number | undefined, number | undefined, number | undefined] = [undefined, undefined, undefined]
  readonly modes: StdioModes
  private readonly toClose: number[] = []
  private stdinWriter: Socket | undefined
  private out: Capture | undefined
  private err: Capture | undefined
  private readonly input: string | Uint8Array | undefined

  constructor(options: StdioOptions) {
    this.input = options.stdin
    let fallback: string | undefined
    const capture = (fd: number, kind: 'pipe' | 'pty', stream: 'stdout' | 'stderr'): Capture => {
      const listener = options.onOutput
      const limit = options.outputLimit ?? DEFAULT_OUTPUT_LIMIT
      return new Capture(fd, kind, limit, listener && ((chunk) => listener(stream, chunk)))
    }
    const connect = (stream: 'stdout' | 'stderr', asked: OutputMode | undefined): [OutputMode, Capture | undefined] => {
      const fd = stream === 'stdout' ? 1 : 2
      const mode = asked ?? 'pty'
      if (mode === 'inherit') {
        this.childFds[fd] = fd
        return [mode, undefined]
      }
      if (mode === 'ignore') return [mode, undefined]
      if (mode === 'pty') {
        const pty = openPty()
        if (!isPtyFailure(pty)) {
          this.toClose.push(pty.slave)
          this.childFds[fd] = pty.slave
          try {
            return ['pty', capture(pty.master, 'pty', stream)]
          } catch (error) {
            sys.close(pty.master)
            throw error
          }
        }
        if (asked === 'pty') throw ptyError(stream, pty)
        fallback ??= `${ptyProblem(pty)} The program's output goes through pipes instead: what it buffers is lost if it crashes.`
      }
      const [r, w] = pipe()
      this.toClose.push(w)
      this.childFds[fd] = w
      return ['pipe', capture(r, 'pipe', stream)]
    }
    try {
      if (options.stdin !== undefined) {
        const [r, w] = pipe()
        this.childFds[0] = r
        this.toClose.push(r)
        if (!writeAtOnce(w, options.stdin)) {
          this.stdinWriter = new Socket({ fd: w, readable: false, writable: true })
          this.stdinWriter.on('error', () => undefined) // EPIPE when the tracee exits without reading
        }
      }
      const [stdout, out] = connect('stdout', options.stdout)
      this.out = out
      const [stderr, err] = connect('stderr', options.stderr)
      this.err = err
      this.modes = { stdout, stderr, ...(fallback !== undefined ? { ptyFallback: fallback } : {}) }
    } catch (error) {
      this.close()
      throw error
    }
    if (fallback !== undefined && !warnedFallback) {
      warnedFallback = true
      process.emitWarning(
        `procsnap: ${fallback} Pass { stdout: 'pipe', stderr: 'pipe' } to launch() to say so and silence this warning.`,
        { code: 'PROCSNAP_PTY_FALLBACK' },
      )
    }
  }

  /** After the spawn: close our copies of the child's ends and start feeding stdin. */
  started(): void {
    for (const fd of this.toClose.splice(0)) sys.close(fd)
    if (this.stdinWriter && this.input !== undefined) {
      this.stdinWriter.end(typeof this.input === 'string' ? this.input : Buffer.from(this.input))
      this.stdinWriter.unref()
    }
  }

  get stdout(): string {
    return this.out?.read() ?? ''
  }

  get stderr(): string {
    return this.err?.read() ?? ''
  }

  get dropped(): OutputDropped {
    return { stdout: this.out?.dropped() ?? 0, stderr: this.err?.dropped() ?? 0 }
  }

  close(): void {
    for (const fd of this.toClose.splice(0)) sys.close(fd)
    this.stdinWriter?.destroy()
    this.out?.close()
    this.err?.close()
  }
}

/** What stands in the way of a pty, and what to do about it. */
function ptyProblem(failure: PtyFailure): string {
  const what = `No pseudo-terminal could be made: ${failure.call} failed (${errnoName(failure.errno)}).`
  switch (failure.errno) {
    case ERRNO.ENOSPC:
      return `${what} Every pty is in use (kernel.pty.max): close some, or raise it (sysctl -w kernel.pty.max=...).`
    case ERRNO.EMFILE:
    case ERRNO.ENFILE:
      return `${what} Too many open files: close some, or raise the limit (ulimit -n).`
    default:
      return (
        `${what} Mount devpts (mount -t devpts devpts /dev/pts; in a container it usually is) and ` +
        `make /dev/ptmx a character device this user may open (ln -s pts/ptmx /dev/ptmx).`
      )
  }
}

function ptyError(stream: 'stdout' | 'stderr', failure: PtyFailure): PtyError {
  return new PtyError(
    stream,
    failure.errno,
    `${ptyProblem(failure)} Or launch with { ${stream}: 'pipe' } (the program's buffered output is then lost if it crashes).`,
  )
}
