// Programs started outside procsnap, and not our children: a shell starts them in a subshell and
// exits, the subshell waits for them and writes their exit status to a file.
import { execFileSync, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'

export interface Outsider {
  pid: number
  dir: string
  /** Its exit status once its subshell wrote it; undefined while it runs. */
  status(): number | undefined
  /** Waits (polling) for its exit status, for at most `ms`. */
  waitStatus(ms?: number): Promise<number>
  /** What it wrote to stdout and stderr (into a file). */
  output(): string
  alive(): boolean
  /** With { fifo: true }: writes to its stdin (a fifo, held open here for reading and writing). */
  write(data: string): void
  /** Closes our end of its stdin fifo: the program reads end-of-file. */
  closeInput(): void
}

const started: Outsider[] = []

afterEach(async () => {
  for (const o of started.splice(0)) {
    if (o.alive()) {
      try {
        process.kill(o.pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    o.closeInput()
    // Its subshell writes the status file once it has reaped it: removing the folder before that
    // raced with the write (ENOTEMPTY in a CI run).
    await o.waitStatus(5000).catch(() => undefined)
    rmSync(o.dir, { recursive: true, force: true, maxRetries: 10 })
  }
})

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

const sleepMs = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts `argv` (with `{dir}` replaced by a fresh temporary folder) outside procsnap, its stdin a
 * fifo we write to (`fifo`) or /dev/null, and returns once it wrote DIR/pid (`pidFile`, default
 * true: the program writes it) or its subshell did.
 */
export async function startOutsider(
  argv: readonly string[],
  options: { fifo?: boolean; pidFile?: boolean } = {},
): Promise<Outsider> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-attach-'))
  const args = argv.map((a) => quote(a.replaceAll('{dir}', dir))).join(' ')
  let input = -1
  if (options.fifo) {
    execFileSync('mkfifo', [join(dir, 'fifo')])
    input = openSync(join(dir, 'fifo'), 'r+') // opened for writing too: neither side's open blocks
  }
  const stdin = options.fifo ? join(dir, 'fifo') : '/dev/null'
  const pidFile = options.pidFile ?? true
  // Without a pid file, the subshell reports its child's pid itself.
  const body = pidFile
    ? `${args} <${quote(stdin)} >${quote(dir)}/out 2>&1; echo $? >${quote(dir)}/status`
    : `${args} <${quote(stdin)} >${quote(dir)}/out 2>&1 & echo $! >${quote(dir)}/pid.tmp; mv ${quote(dir)}/pid.tmp ${quote(dir)}/pid; wait $!; echo $? >${quote(dir)}/status`
  const r = spawnSync('sh', ['-c', `( ${body} ) </dev/null >/dev/null 2>&1 &`])
  if (r.status !== 0) throw new Error(`sh failed: ${String(r.stderr)}`)
  const until = performance.now() + 10_000
  while (!existsSync(join(dir, 'pid'))) {
    if (performance.now() > until) throw new Error(`no pid file in ${dir}`)
    await sleepMs(5)
  }
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim())
  const status = (): number | undefined =>
    existsSync(join(dir, 'status')) && readFileSync(join(dir, 'status'), 'utf8').endsWith('\n')
      ? Number(readFileSync(join(dir, 'status'), 'utf8').trim())
      : undefined
  const o: Outsider = {
    pid,
    dir,
    status,
    async waitStatus(ms = 10_000) {
      const end = performance.now() + ms
      for (;;) {
        const s = status()
        if (s !== undefined) return s
        if (performance.now() > end) throw new Error(`process ${pid} did not end within ${ms} ms`)
        await sleepMs(10)
      }
    },
    output: () => (existsSync(join(dir, 'out')) ? readFileSync(join(dir, 'out'), 'utf8') : ''),
    alive: () => existsSync(`/proc/${pid}`) && stateOf(pid) !== 'Z',
    write: (data) => void writeSync(input, data),
    closeInput() {
      if (input >= 0) closeSync(input)
      input = -1
    },
  }
  started.push(o)
  return o
}

/** The state letter of /proc/PID/stat ('R', 'S', 't' for traced-stopped, 'Z'), or '' when gone; `pid` may be 'PID/task/TID'. */
export function stateOf(pid: number | string): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return ''
  }
}

/** TracerPid of /proc/PID/status: 0 when nobody traces it. */
export function tracerOf(pid: number | string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1')
  return Number(/^TracerPid:\s+(\d+)/m.exec(status)?.[1])
}

/** The parent pid of a process, from ps (not our code). */
export function parentOf(pid: number): number {
  return Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim())
}
