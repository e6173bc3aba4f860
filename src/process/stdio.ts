// The tracee's standard streams: stdin fed from a string or bytes and closed, stdout and stderr
// captured through pipes that the event loop drains (so a chatty tracee never blocks on a full pipe).
import { readSync } from 'node:fs'
import { Socket } from 'node:net'
import { ProcsnapError } from '../errors.js'
import { sys, lastErrno } from '../native/libc.js'

const O_CLOEXEC = 0o2000000

function pipe(): [number, number] {
  const fds = new Int32Array(2)
  if (sys.pipe2(fds, O_CLOEXEC) !== 0)
    throw new ProcsnapError('ERR_SPAWN_FAILED', `pipe2 failed (errno ${lastErrno()}): too many open files?`)
  return [fds[0] ?? -1, fds[1] ?? -1]
}

/** One captured output stream. */
class Capture {
  private readonly fd: number
  private readonly socket: Socket
  private readonly chunks: Buffer[] = []
  private text: string | undefined = ''
  private readonly scratch = Buffer.allocUnsafe(65536)

  constructor(fd: number) {
    this.fd = fd
    this.socket = new Socket({ fd, readable: true, writable: false })
    this.socket.on('data', (chunk: Buffer) => this.push(chunk))
    this.socket.on('error', () => undefined)
    this.socket.unref()
  }

  private push(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk))
    this.text = undefined
  }

  /** Everything written so far, reading what is still in the pipe first. */
  read(): string {
    this.drain()
    this.text ??= Buffer.concat(this.chunks).toString('utf8')
    return this.text
  }

  private drain(): void {
    if (this.socket.destroyed) return
    for (;;) {
      let n = 0
      try {
        n = readSync(this.fd, this.scratch, 0, this.scratch.length, null)
      } catch {
        return // EAGAIN: the pipe is empty
      }
      if (n <= 0) return
      this.push(this.scratch.subarray(0, n))
    }
  }

  close(): void {
    this.drain()
    this.socket.destroy()
  }
}

export interface StdioOptions {
  stdin: string | Uint8Array | undefined
  /** 'pipe' captures into proc.stdout/proc.stderr; 'inherit' shares ours; 'ignore' is /dev/null. */
  stdout: 'pipe' | 'inherit' | 'ignore'
  stderr: 'pipe' | 'inherit' | 'ignore'
}

export class Stdio {
  /** Parent-side fds to give the child as 0, 1, 2 (undefined: /dev/null). */
  readonly childFds: [number | undefined, number | undefined, number | undefined]
  private readonly toClose: number[] = []
  private stdinWriter: Socket | undefined
  private readonly out: Capture | undefined
  private readonly err: Capture | undefined
  private readonly input: string | Uint8Array | undefined

  constructor(options: StdioOptions) {
    this.input = options.stdin
    let stdinFd: number | undefined
    if (options.stdin !== undefined) {
      const [r, w] = pipe()
      stdinFd = r
      this.toClose.push(r)
      this.stdinWriter = new Socket({ fd: w, readable: false, writable: true })
      this.stdinWriter.on('error', () => undefined) // EPIPE when the tracee exits without reading
    }
    const capture = (mode: 'pipe' | 'inherit' | 'ignore', own: number): [number | undefined, Capture | undefined] => {
      if (mode === 'inherit') return [own, undefined]
      if (mode === 'ignore') return [undefined, undefined]
      const [r, w] = pipe()
      this.toClose.push(w)
      return [w, new Capture(r)]
    }
    const [outFd, out] = capture(options.stdout, 1)
    const [errFd, err] = capture(options.stderr, 2)
    this.out = out
    this.err = err
    this.childFds = [stdinFd, outFd, errFd]
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

  close(): void {
    for (const fd of this.toClose.splice(0)) sys.close(fd)
    this.stdinWriter?.destroy()
    this.out?.close()
    this.err?.close()
  }
}
