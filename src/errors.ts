// Typed errors shared by every layer: one class per failure kind, each with a stable `code`
// and a message that says what to do next. A leaf module: it imports nothing of ours.

export type ErrorCode =
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_NOT_EXECUTABLE'
  | 'ERR_NOT_ELF'
  | 'ERR_WRONG_ARCH'
  | 'ERR_ELF_CORRUPT'
  | 'ERR_SPAWN_FAILED'
  | 'ERR_PTY_UNAVAILABLE'
  | 'ERR_ISOLATION_UNAVAILABLE'
  | 'ERR_PTRACE_DENIED'
  | 'ERR_PTRACE'
  | 'ERR_SYMBOL_NOT_FOUND'
  | 'ERR_BAD_LOCATION'
  | 'ERR_BAD_ARGUMENT'
  | 'ERR_BAD_OPTION'
  | 'ERR_ADDRESS_UNMAPPED'
  | 'ERR_MEMORY_ACCESS'
  | 'ERR_NOT_CAPTURED'
  | 'ERR_SNAPSHOT_MISMATCH'
  | 'ERR_SNAPSHOT_NOT_FOUND'
  | 'ERR_SNAPSHOT_CORRUPT'
  | 'ERR_SNAPSHOT_FOREIGN'
  | 'ERR_SNAPSHOT_VERSION'
  | 'ERR_SNAPSHOT_ARCH'
  | 'ERR_GOLDEN_CORRUPT'
  | 'ERR_GOLDEN_VERSION'
  | 'ERR_GOLDEN_MISSING'
  | 'ERR_GOLDEN_OUTSIDE'
  | 'ERR_GOLDEN_OBSOLETE'
  | 'ERR_UNKNOWN_REGISTER'
  | 'ERR_TIMEOUT'
  | 'ERR_PROCESS_EXITED'
  | 'ERR_PROCESS_ENDED'
  | 'ERR_PROCESS_RUNNING'
  | 'ERR_UNSUPPORTED_ARCH'
  | 'ERR_READ_ONLY'
  | 'ERR_BAD_VALUE'
  | 'ERR_NOT_A_FILE'
  | 'ERR_FILE_TOO_LARGE'
  | 'ERR_FILE_UNREADABLE'
  | 'ERR_FILE_UNWRITABLE'
  | 'ERR_INJECT_FAILED'
  | 'ERR_TRACKING_ENDED'
  | 'ERR_RESTORE_LEVEL'
  | 'ERR_RESTORE_PROCESS'
  | 'ERR_RESTORE_THREADS'
  | 'ERR_RESTORE_FILE'
  | 'ERR_RESTORE_FAILED'
  | 'ERR_NO_SUCH_PROCESS'
  | 'ERR_ALREADY_TRACED'
  | 'ERR_INTERRUPTED'

export class ProcsnapError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** The binary to launch is missing, not executable, not ELF, corrupt, or built for another machine. */
export class BinaryError extends ProcsnapError {
  readonly path: string

  constructor(
    code: 'ERR_FILE_NOT_FOUND' | 'ERR_NOT_EXECUTABLE' | 'ERR_NOT_ELF' | 'ERR_WRONG_ARCH' | 'ERR_ELF_CORRUPT',
    path: string,
    message: string,
  ) {
    super(code, message)
    this.path = path
  }
}

/** The kernel refused ptrace, or a ptrace/spawn call failed in a way the caller cannot fix by retrying. */
export class PtraceError extends ProcsnapError {
  readonly errno: number

  constructor(code: 'ERR_PTRACE_DENIED' | 'ERR_PTRACE' | 'ERR_SPAWN_FAILED', errno: number, message: string) {
    super(code, message)
    this.errno = errno
  }
}

/** No pseudo-terminal could be made for the program's stdout or stderr (asked for with 'pty'). */
export class PtyError extends ProcsnapError {
  readonly errno: number
  /** The stream that asked for it. */
  readonly stream: 'stdout' | 'stderr'

  constructor(stream: 'stdout' | 'stderr', errno: number, message: string) {
    super('ERR_PTY_UNAVAILABLE', message)
    this.errno = errno
    this.stream = stream
  }
}

/** A symbol name that no loaded module defines; `suggestions` holds near names. */
export class SymbolNotFoundError extends ProcsnapError {
  readonly symbol: string
  readonly suggestions: readonly string[]

  constructor(symbol: string, suggestions: readonly string[], where: string) {
    const hint = suggestions.length > 0 ? ` Did you mean ${suggestions.map((s) => `'${s}'`).join(', ')}?` : ''
    super(
      'ERR_SYMBOL_NOT_FOUND',
      `No symbol '${symbol}' in ${where}.${hint} Use 'module!symbol' for a library symbol, ` +
        `'module+0xoffset', or an absolute bigint address.`,
    )
    this.symbol = symbol
    this.suggestions = suggestions
  }
}

/** A location string that does not parse, or names a module that is not loaded. */
export class LocationError extends ProcsnapError {
  constructor(message: string) {
    super('ERR_BAD_LOCATION', message)
  }
}

/** An address that no mapping contains, or memory the kernel would not let us read or write. */
export class MemoryError extends ProcsnapError {
  /** Where the access failed: for a read that got part of the way, the first byte it could not read. */
  readonly address: bigint
  readonly length: number
  /** The kernel's refusal ('EIO', 'EFAULT'), when a live access failed with one. */
  readonly errno: string | undefined

  /** ERR_NOT_CAPTURED: mapped in the snapshot's process, but the snapshot's level does not hold those bytes. */
  constructor(
    code: 'ERR_ADDRESS_UNMAPPED' | 'ERR_MEMORY_ACCESS' | 'ERR_NOT_CAPTURED',
    address: bigint,
    length: number,
    message: string,
    errno?: string,
  ) {
    super(code, message)
    this.address = address
    this.length = length
    this.errno = errno
  }
}

export class RegisterError extends ProcsnapError {
  constructor(message: string) {
    super('ERR_UNKNOWN_REGISTER', message)
  }
}

/** A wait passed its deadline; the process was interrupted and is stopped where `location` says. */
export class TimeoutError extends ProcsnapError {
  readonly pc: bigint | undefined
  readonly location: string | undefined

  constructor(message: string, pc?: bigint, location?: string) {
    super('ERR_TIMEOUT', message)
    this.pc = pc
    this.location = location
  }
}

/** The process ended (exited or was killed) before what the caller waited for, or was used after it ended. */
export class ProcessStateError extends ProcsnapError {
  constructor(
    code: 'ERR_PROCESS_EXITED' | 'ERR_PROCESS_ENDED' | 'ERR_PROCESS_RUNNING' | 'ERR_INTERRUPTED',
    message: string,
  ) {
    super(code, message)
  }
}

/** A write to a field that procsnap keeps (a breakpoint's hit count, a snapshot's registers). */
export class ReadOnlyError extends ProcsnapError {
  constructor(message: string) {
    super('ERR_READ_ONLY', message)
  }
}

/** A value of the wrong kind for what it is given to (a register value that is not an integer, ...). */
export class ValueError extends ProcsnapError {
  constructor(message: string) {
    super('ERR_BAD_VALUE', message)
  }
}

export class UnsupportedArchError extends ProcsnapError {
  constructor(message: string) {
    super('ERR_UNSUPPORTED_ARCH', message)
  }
}

/** A snapshot file that is missing, damaged or truncated, not ours, from a newer procsnap, or of an unknown architecture. */
export class SnapshotFormatError extends ProcsnapError {
  /** The file (or 'buffer'). */
  readonly source: string

  constructor(
    code:
      | 'ERR_SNAPSHOT_NOT_FOUND'
      | 'ERR_SNAPSHOT_CORRUPT'
      | 'ERR_SNAPSHOT_FOREIGN'
      | 'ERR_SNAPSHOT_VERSION'
      | 'ERR_SNAPSHOT_ARCH',
    source: string,
    message: string,
  ) {
    super(code, message)
    this.source = source
  }
}

/**
 * A golden file that cannot be read back (hand-edited badly, from a newer procsnap), one CI may not
 * write, one whose folder is a link out of the project, or obsolete ones in CI (path: the first).
 */
export class GoldenError extends ProcsnapError {
  readonly path: string
  /** 1-based line of the problem, when there is one. */
  readonly line: number | undefined

  constructor(
    code:
      'ERR_GOLDEN_CORRUPT' | 'ERR_GOLDEN_VERSION' | 'ERR_GOLDEN_MISSING' | 'ERR_GOLDEN_OUTSIDE' | 'ERR_GOLDEN_OBSOLETE',
    path: string,
    line: number | undefined,
    message: string,
  ) {
    super(code, message)
    this.path = path
    this.line = line
  }
}

/** The program could not be put in new namespaces (launch's isolate: true), and why. */
export class IsolationError extends ProcsnapError {
  readonly errno: number

  constructor(errno: number, message: string) {
    super('ERR_ISOLATION_UNAVAILABLE', message)
    this.errno = errno
  }
}

/** A file procsnap was asked to read is not a regular file, is larger than its kind may be, or cannot be read. */
export class FileError extends ProcsnapError {
  readonly path: string

  constructor(
    code: 'ERR_NOT_A_FILE' | 'ERR_FILE_TOO_LARGE' | 'ERR_FILE_UNREADABLE' | 'ERR_FILE_UNWRITABLE',
    path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options)
    this.path = path
  }
}

/** A system call run inside the tracee (inject.ts) could not be run; the tracee is left as it was. */
export class InjectError extends ProcsnapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INJECT_FAILED', message, options)
  }
}

/** A tracker of written pages (written-pages.ts) whose address space is gone (exec, end) or that was closed. */
export class TrackingEndedError extends ProcsnapError {
  constructor(message: string) {
    super('ERR_TRACKING_ENDED', message)
  }
}

/** A snapshot that cannot be restored into this process, or a restore that failed midway (restore.ts). */
export class RestoreError extends ProcsnapError {
  constructor(
    code:
      'ERR_RESTORE_LEVEL' | 'ERR_RESTORE_PROCESS' | 'ERR_RESTORE_THREADS' | 'ERR_RESTORE_FILE' | 'ERR_RESTORE_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options)
  }
}

/** attach() found no process to trace: no such pid, or one that another tracer holds already. */
export class AttachError extends ProcsnapError {
  readonly pid: number

  constructor(code: 'ERR_NO_SUCH_PROCESS' | 'ERR_ALREADY_TRACED', pid: number, message: string) {
    super(code, message)
    this.pid = pid
  }
}
