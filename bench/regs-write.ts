// `BENCH_ONLY=regswrite`: writing every register of a stopped thread (a snapshot's record: general,
// x87, SSE, AVX, AVX-512) with thread.setRegisters, as restoring a snapshot does per thread, against
// the kernel's price for the same writes: a C loop of PTRACE_GETREGS, SETREGS, GETREGSET(NT_X86_XSTATE)
// and SETREGSET (bench/c/regs_write.c). Both change rax and xmm0 on each write, so both blocks are written.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'
import { RUNS, type Row } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const VECREGS = `${ROOT}fixtures/c/bin/vecregs`
const C_BASELINE = `${ROOT}bench/bin/regs_write`
const WRITES = Number(process.env.BENCH_REG_WRITES ?? 2000)

function checkpointOffset(): string {
  const line = execFileSync('nm', [VECREGS], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(' checkpoint'))
  if (!line) throw new Error(`no checkpoint in ${VECREGS}`)
  return line.split(' ')[0] ?? ''
}

interface OursRun {
  /** µs per setRegisters of the whole record. */
  all: number
  /** µs per setRegisters({ rax, xmm0 }). */
  two: number
  names: number
}

async function oursRun(): Promise<OursRun> {
  const proc = await launch(VECREGS, { stdout: 'ignore', stderr: 'ignore' })
  try {
    proc.breakAt('checkpoint')
    const ev = await proc.cont()
    if (ev.kind !== 'breakpoint') throw new Error(`vecregs stopped by ${ev.kind}, not at checkpoint`)
    const thread = proc.thread
    const saved = { ...thread.createSnapshot({ level: 'base' }).regs }
    const other: Record<string, bigint> = { ...saved, rax: (saved.rax ?? 0n) ^ 1n, xmm0: (saved.xmm0 ?? 0n) ^ 1n }
    // ymm0 and zmm0 hold xmm0 too: the changed record gives them the changed low bits.
    for (const wide of ['ymm0', 'zmm0'] as const) {
      const value = saved[wide]
      if (value !== undefined) other[wide] = value ^ 1n
    }
    const records = [saved, other]
    let t0 = performance.now()
    for (let i = 0; i < WRITES; i++) thread.setRegisters(records[i & 1] ?? saved)
    const all = ((performance.now() - t0) / WRITES) * 1000
    const pairs = records.map((r) => ({ rax: r.rax ?? 0n, xmm0: r.xmm0 ?? 0n }))
    t0 = performance.now()
    for (let i = 0; i < WRITES; i++) thread.setRegisters(pairs[i & 1] ?? {})
    const two = ((performance.now() - t0) / WRITES) * 1000
    return { all, two, names: Object.keys(saved).length }
  } finally {
    await proc.kill()
  }
}

function cRun(offset: string): number {
  const out = execFileSync(C_BASELINE, ['--runs', '3', '--iterations', String(WRITES), VECREGS, offset], {
    encoding: 'utf8',
  })
  return (JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { median_us: number }).median_us
}

export async function regsWriteRows(): Promise<Row[]> {
  const offset = checkpointOffset()
  const ours: OursRun[] = []
  const base: number[] = []
  for (let r = 0; r < RUNS; r++) {
    ours.push(await oursRun())
    base.push(cRun(offset))
  }
  const names = ours[0]?.names ?? 0
  return [
    {
      measure: `thread.setRegisters of a snapshot's whole record (${names} registers: general, x87, SSE, AVX, AVX-512 here), rax and xmm0 changed each time, per write (baseline: C GETREGS + SETREGS + GETREGSET + SETREGSET xsave)`,
      ours: ours.map((x) => x.all),
      baseline: base,
      unit: 'µs',
      better: 'lower',
      target: 'ptrace cost',
    },
    {
      measure: `thread.setRegisters({ rax, xmm0 }), per write (baseline: C as above)`,
      ours: ours.map((x) => x.two),
      baseline: base,
      unit: 'µs',
      better: 'lower',
      target: 'ptrace cost',
    },
  ]
}
