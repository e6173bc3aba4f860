// launch's isolate: the program sees the same ids, pids, hostname and working directory whoever runs
// it and wherever the project lies; it falls back (or throws) where the system refuses namespaces.
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import { launch, type Process } from '../../src/index.js'
import { ROOT, useDist } from '../dist.js'
import { fixture, othersCanEnter, start, strayChildren } from '../helpers.js'

const isRoot = process.getuid?.() === 0
const PYTHON = '/usr/bin/python3'

async function output(proc: Process): Promise<string> {
  expect(await proc.wait()).toEqual({ exitCode: 0 })
  return proc.stdout
}

/** Outer pids of the live children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1')
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(ppid) === pid && state !== 'Z') out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const until = performance.now() + ms
  while (existsSync(`/proc/${pid}`)) {
    if (performance.now() > until) return false
    await sleep(10)
  }
  return true
}

describe('what an isolated program sees', () => {
  it('uid and gid 0, hostname procsnap, its cwd at /tmp/procsnap, pid 2 under an init that is pid 1', async () => {
    const proc = await start('/bin/bash', { args: ['-c', 'id -u; id -g; id -un; hostname; pwd; echo $$ $PPID'] })
    expect(proc.isolation).toEqual({
      isolated: true,
      uid: 0,
      gid: 0,
      pid: 2,
      hostname: 'procsnap',
      cwd: '/tmp/procsnap',
    })
    expect(await output(proc)).toBe('0\n0\nroot\nprocsnap\n/tmp/procsnap\n2 1\n')
    const id = await output(await start('/usr/bin/id'))
    // Root may drop its supplementary groups; another user keeps them, shown unmapped (65534).
    if (isRoot) expect(id).toBe('uid=0(root) gid=0(root) groups=0(root)\n')
    else expect(id).toMatch(/^uid=0\(root\) gid=0\(root\) groups=/)
  })

  it('python3: os.getpid(), getppid(), getuid(), process group, session and /proc/self agree', async () => {
    const script = [
      'import os, socket',
      'print(os.getpid(), os.getppid(), os.getuid(), os.getgid(), os.getpgrp(), os.getsid(0))',
      'print(socket.gethostname(), os.getcwd(), os.readlink("/proc/self"))',
      'status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())',
      'print(*(" ".join(status[k].split()) for k in ("Pid", "PPid", "NSpid", "Uid", "Gid")), sep="|")',
    ].join('\n')
    const proc = await start(PYTHON, { args: ['-c', script] })
    expect(await output(proc)).toBe('2 1 0 0 1 1\nprocsnap /tmp/procsnap 2\n2|1|2|0 0 0 0|0 0 0 0\n')
    expect(proc.pid).not.toBe(2) // the tracer sees the outer pid
  })

  it('ps inside lists only the init and the program: its own process group and session, no terminal', async () => {
    const proc = await start('/usr/bin/ps', { args: ['-e', '-o', 'pid=,ppid=,pgid=,sid=,tty=,comm='] })
    const rows = (await output(proc)).split('\n').map((l) => l.trim().split(/\s+/))
    expect(rows).toEqual([['1', '0', '1', '1', '?', 'procsnap-init'], ['2', '1', '1', '1', '?', 'ps'], ['']])
  })

  it('relative and absolute paths in args still resolve; the executable under the cwd is seen under /tmp/procsnap', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procsnap-isolate-'))
    try {
      writeFileSync(join(dir, 'relative.txt'), 'relative\n')
      const absolute = join(dir, 'absolute.txt')
      writeFileSync(absolute, 'absolute\n')
      mkdirSync(join(dir, 'bin'))
      copyFileSync(fixture('counter'), join(dir, 'bin/counter'))
      const cat = await start('/bin/cat', { args: ['relative.txt', absolute], cwd: dir })
      expect(await output(cat)).toBe('relative\nabsolute\n')
      const proc = await start(join(dir, 'bin/counter'), { args: ['0'], cwd: dir })
      expect(proc.path).toBe('/tmp/procsnap/bin/counter')
      expect(proc.argv[0]).toBe('/tmp/procsnap/bin/counter')
      expect(proc.modules[0]?.path).toBe('/tmp/procsnap/bin/counter') // its ELF is read all the same
      expect(execFn(proc)).toBe('/tmp/procsnap/bin/counter')
      proc.breakAt('compute')
      expect((await proc.cont()).kind).toBe('breakpoint')
      await proc.kill()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('goldens write the same ids on every run: pid 2, the worker thread 3', async () => {
    const texts: string[] = []
    for (let run = 0; run < 2; run++) {
      const proc = await start(fixture('ids'))
      proc.breakAt('checkpoint')
      expect((await proc.cont()).kind).toBe('breakpoint')
      const snap = proc.createSnapshot({ level: 'writable' })
      const text = renderGolden(
        { key: 'ids', test: 'isolate' },
        goldenSections(snap.data, snap.modules(), { include: ['regs', 'memory'] }),
      )
      // The lines that held ids (the rest moves with where the scheduler left the main thread).
      const worker = text.slice(text.indexOf('thread 2 registers:'))
      const lines = worker.split('\n').filter((l) => /^ {2}(rdi|rsi|ids!g_\w+) /.test(l))
      texts.push(`\n${lines.join('\n')}\n`)
      await proc.kill()
    }
    expect(texts[1]).toBe(texts[0])
    expect(texts[0]).toMatch(/\n {2}rdi +0x2\n/)
    expect(texts[0]).toMatch(/\n {2}rsi +0x3\n/)
    expect(texts[0]).toMatch(/\n {2}ids!g_pid +02 00 00 00\n/)
    expect(texts[0]).toMatch(/\n {2}ids!g_worker_tid +03 00 00 00\n/)
  })

  it('abort() still ends in SIGABRT: the program is not pid 1', async () => {
    const proc = await start(fixture('abort'))
    expect(await proc.cont()).toMatchObject({ kind: 'signal', signal: 'SIGABRT' })
    expect(await proc.cont()).toEqual({ kind: 'killed', signal: 'SIGABRT' })
  })

  it('isolate: false runs it as before: this machine pids, hostname and cwd', async () => {
    const proc = await start(PYTHON, {
      args: ['-c', 'import os, socket; print(os.getpid(), socket.gethostname(), os.getcwd())'],
      isolate: false,
    })
    expect(proc.isolation).toEqual({ isolated: false, reason: 'isolate: false' })
    expect(await output(proc)).toBe(`${proc.pid} ${hostname()} ${process.cwd()}\n`)
  })
})

/** AT_EXECFN: the path the kernel exec'd, as the program reads it from its auxv. */
function execFn(proc: Process): string {
  const auxv = readFileSync(`/proc/${proc.pid}/auxv`)
  for (let i = 0; i + 16 <= auxv.length; i += 16) {
    if (auxv.readBigUInt64LE(i) === 31n) {
      const at = auxv.readBigUInt64LE(i + 8)
      const stack = proc.maps.find((m) => m.start <= at && at < m.end)
      const bytes = proc.readMemory(at, Number((stack?.end ?? at + 1n) - at)) // it lies at the top of the stack
      return Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1')
    }
  }
  return ''
}

describe('nothing of an isolated program is left behind', () => {
  it('kill() ends the program, its init and a child it forked; no process or zombie remains', async () => {
    const proc = await launch('/bin/bash', { args: ['-c', '/bin/sleep 1000 & wait'] })
    await proc.cont({ timeout: 300 }).catch(() => undefined) // runs until the timeout: sleep has started
    const children = childrenOf(proc.pid)
    expect(children).toHaveLength(1)
    await proc.kill()
    for (const pid of children) expect(await goneWithin(pid, 2000)).toBe(true)
    expect(strayChildren()).toEqual([])
  })

  it('a program that exits leaves no child of its own running (its PID namespace ends with it)', async () => {
    const proc = await launch('/bin/bash', { args: ['-c', '/bin/sleep 1000 & echo $!'] })
    proc.breakAt('libc.so.6!exit')
    expect((await proc.cont()).kind).toBe('breakpoint')
    const children = childrenOf(proc.pid)
    expect(children).toHaveLength(1)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('3\n') // the sleep is pid 3 inside
    for (const pid of children) expect(await goneWithin(pid, 2000)).toBe(true)
    expect(strayChildren()).toEqual([])
  })
})

describe('in a child node process', () => {
  const distBuild = useDist()
  const base = mkdtempSync(join(tmpdir(), 'procsnap-isolate-users-'))
  afterAll(() => rmSync(base, { recursive: true, force: true }))

  const script = (dir: string): string => `
import { launch } from './index.js'
process.chdir(${JSON.stringify(dir)})
const runs = [
  ['/bin/bash', ['-c', 'id; id -un; hostname; pwd; echo $$ $PPID; stat -c "%u %g %U %n" bin/counter; grep -E "^(Pid|PPid|NSpid|Uid|Gid|Groups)" /proc/self/status']],
  [${JSON.stringify(PYTHON)}, ['-c', 'import os; print(os.getpid(), os.getuid(), os.getgroups(), os.getcwd(), os.readlink("/proc/self/exe"))']],
  ['./bin/counter', ['1', '--cwd']],
]
const out = []
for (const [file, args] of runs) {
  const proc = await launch(file, { args })
  out.push(JSON.stringify([proc.isolation, await proc.wait(), proc.stdout, proc.stderr]))
}
const counter = await launch(process.cwd() + '/bin/counter', { args: ['0'] })
const auxv = (await import('node:fs')).readFileSync('/proc/' + counter.pid + '/auxv')
for (let i = 0; i < auxv.length; i += 16)
  if (auxv.readBigUInt64LE(i) === 31n) {
    const at = auxv.readBigUInt64LE(i + 8)
    const end = counter.maps.find((m) => m.start <= at && at < m.end).end
    out.push(Buffer.from(counter.readMemory(at, Number(end - at))).toString('latin1').split('\\0')[0])
  }
out.push(counter.path)
await counter.kill()
console.log(out.join('\\n'))
`

  /** A copy of the counter fixture under `dir`, readable (and owned, when we may) by `uid`. */
  function project(dir: string, uid: number): void {
    mkdirSync(join(dir, 'bin'), { recursive: true })
    copyFileSync(fixture('counter'), join(dir, 'bin/counter'))
    for (let d = dir; d.startsWith(base); d = join(d, '..')) chmodSync(d, 0o755)
    chmodSync(join(dir, 'bin'), 0o755)
    chmodSync(join(dir, 'bin/counter'), 0o755)
    if (isRoot) for (const p of [dir, join(dir, 'bin'), join(dir, 'bin/counter')]) chownSync(p, uid, uid)
  }

  // As root the child runs as uid 1234, which must reach this repository's node_modules (a clone in a
  // mktemp -d directory, mode 700, is out of its reach).
  it.skipIf(isRoot && !othersCanEnter(ROOT))(
    'uid 1234 (no groups) in a longer project path sees what this user sees: ids, pids, paths, AT_EXECFN',
    () => {
      const here = join(base, 'p')
      const there = join(base, 'a-much-longer-path/to/another/checkout/of/the/project')
      project(here, process.getuid?.() ?? 0)
      project(there, 1234)
      const dist = distBuild()
      chmodSync(dist.dir, 0o755)
      const mine = dist.run(script(here), isRoot ? { prefix: ['setpriv', '--clear-groups', '--'] } : {})
      // As root, become uid 1234; as another user, a user namespace where we are uid 1234.
      const asOther = isRoot
        ? ['setpriv', '--reuid', '1234', '--regid', '1234', '--clear-groups', '--']
        : ['unshare', '--user', '--map-user=1234', '--map-group=1234', '--']
      for (const file of readdirSync(dist.dir)) chmodSync(join(dist.dir, file), 0o755)
      const theirs = dist.run(script(there), { prefix: asOther })
      expect(mine.stderr).toBe('')
      expect(theirs.stderr).toBe('')
      expect(mine.status).toBe(0)
      expect(theirs.stdout).toBe(mine.stdout)
      // (JSON text.) Supplementary groups: none as root; another user keeps its own, unmapped (65534).
      expect(mine.stdout).toMatch(
        /uid=0\(root\) gid=0\(root\) groups=0\(root\)[^\\]*\\nroot\\nprocsnap\\n\/tmp\/procsnap\\n2 1\\n0 0 root bin\/counter/,
      )
      expect(mine.stdout).toContain('cwd /tmp/procsnap\\n')
      expect(mine.stdout.split('\n').slice(-3)).toEqual(['/tmp/procsnap/bin/counter', '/tmp/procsnap/bin/counter', ''])
    },
    60_000,
  )

  it('where the system refuses namespaces, the default runs the program without them (proc.isolation says why, one warning); isolate: true throws', () => {
    const script = `
import { launch } from './index.js'
const a = await launch('/bin/true')
const b = await launch('/bin/true')
let error
try { await launch('/bin/true', { isolate: true }) } catch (e) { error = { name: e.name, code: e.code, errno: e.errno, message: e.message } }
console.log(JSON.stringify({ a: a.isolation, b: b.isolation, exits: [await a.wait(), await b.wait()], error }))
`
    // A user namespace of its own where no further user namespace may be made (the host's limit is untouched).
    const refuse = [
      'unshare',
      '--user',
      '--map-root-user',
      'sh',
      '-c',
      'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"',
      'sh',
    ]
    const child = distBuild().run(script, { prefix: refuse })
    expect(child.status, child.stderr).toBe(0)
    const result = JSON.parse(child.stdout) as Record<string, unknown>
    const reason =
      'unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS) failed (ENOSPC): user.max_user_namespaces is reached or 0'
    expect(result).toEqual({
      a: { isolated: false, reason },
      b: { isolated: false, reason },
      exits: [{ exitCode: 0 }, { exitCode: 0 }],
      error: {
        name: 'IsolationError',
        code: 'ERR_ISOLATION_UNAVAILABLE',
        errno: 28,
        message: expect.stringContaining(`${reason}. Launch with { isolate: false }`) as unknown,
      },
    })
    expect(child.stderr.match(/PROCSNAP_ISOLATION_FALLBACK/g)).toHaveLength(1)
  }, 60_000)
})
