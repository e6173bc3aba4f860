// The reserve fixture stopped at ready() with a 1 GiB map of which 3 pages are touched, and its
// 'writable' snapshot: the large sparse case of both core tests (export and import).
import type { Process } from '../../src/index.js'
import { fixture, start } from '../helpers.js'
import type { ProcessSnapshot } from '../../src/index.js'

export async function reserveAtReady(): Promise<{ proc: Process; buf: bigint; snap: ProcessSnapshot }> {
  const proc = await start(fixture('reserve'), { args: ['1024', '3'] })
  proc.breakAt('ready')
  await proc.cont()
  const buf = proc.regs.rdi
  const snap = proc.createSnapshot({ level: 'writable' })
  return { proc, buf, snap }
}
