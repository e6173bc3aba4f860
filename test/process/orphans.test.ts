// A worker thread terminated without its exit hooks (Vitest's threads pool) leaves its tracees
// killed by PTRACE_O_EXITKILL but unreaped: zombies of this process until it exits. The next launch,
// in any thread, reaps those of tracer threads that are gone, and never a live tracer's.
import { describe, expect, it } from 'vitest'
import { useDist } from '../dist.js'
import { fixture } from '../helpers.js'

const script = (brood: string, sleeper: string): string => `
import { Worker } from 'node:worker_threads'
import { execFileSync } from 'node:child_process'
import { launch } from './index.js'

const zombies = () => execFileSync('ps', ['-o', 'stat=,pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
  .split('\\n').map((s) => s.trim()).filter((s) => s.startsWith('Z'))
const worker = (code) => {
  const w = new Worker(code, { eval: true })
  return { w, ready: new Promise((resolve) => w.once('message', resolve)) }
}
const leaverCode = \`
  import('${'$'}{process.cwd()}/index.js').then(async ({ launch }) => {
    globalThis.kept = [] // no handle collected (its finalizer would kill and reap the tracee itself)
    for (const isolate of [false, false, false, true]) globalThis.kept.push(await launch(${JSON.stringify(brood)}, { args: ['0', '1000'], isolate }))
    require('node:worker_threads').parentPort.postMessage('ready')
  })\`
const keeper = worker(\`
  const { parentPort } = require('node:worker_threads')
  import('${'$'}{process.cwd()}/index.js').then(async ({ launch }) => {
    const p = await launch(${JSON.stringify(sleeper)}, { isolate: false })
    const pending = p.cont({ timeout: 60000 })
    parentPort.postMessage('ready')
    parentPort.once('message', async () => { await p.kill(); parentPort.postMessage(await pending) })
  })\`)
await keeper.ready
// The kernel kills a terminated worker's tracees as its thread exits (PTRACE_O_EXITKILL); now and then
// Node still runs the worker's exit hooks, which reap them itself: then there is nothing to show, try again.
let before = []
for (let attempt = 0; attempt < 5 && before.length < 4; attempt++) {
  const leaver = worker(leaverCode)
  await leaver.ready
  await leaver.w.terminate()
  for (let waited = 0; waited < 3000; waited += 50) {
    await new Promise((r) => setTimeout(r, 50))
    before = zombies()
    if (before.length >= 4 || execFileSync('ps', ['-o', 'pid=', '--ppid', String(process.pid)], { encoding: 'utf8' }).trim().split('\\n').length <= 2) break
  }
}
const proc = await launch(${JSON.stringify(brood)}, { args: ['0', '1000'] })
const after = zombies()
keeper.w.postMessage('end')
const keeperEnd = await new Promise((resolve) => keeper.w.once('message', resolve))
await proc.kill()
await keeper.w.terminate()
console.log(JSON.stringify({ before, after, keeperEnd }))
`

describe("a terminated worker's tracees", () => {
  const dist = useDist()

  it('are reaped by the next launch in another thread; a live worker keeps its own', () => {
    const r = dist().run(script(fixture('brood'), fixture('sleeper')), { timeout: 30_000 })
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout.trim()) as { before: string[]; after: string[]; keeperEnd: unknown }
    expect(out.before.length).toBeGreaterThanOrEqual(4) // three tracees and an isolated one's init, killed, not reaped
    expect(out.after, JSON.stringify(out)).toEqual([])
    expect(out.keeperEnd).toEqual({ kind: 'killed', signal: 'SIGKILL' }) // its status was not stolen
  }, 40_000)
})
