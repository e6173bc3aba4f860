// A test of the counter fixture (fixtures/c/counter.c in the procsnap repository; build it with
// `make -C fixtures/c`, or point COUNTER at your own binary).
import { expect, test } from 'vitest'
import { launch } from 'procsnap'

const COUNTER = process.env.COUNTER ?? new URL('../../fixtures/c/bin/counter', import.meta.url).pathname

test('bump increments the counter', async () => {
  const proc = await launch(COUNTER, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toHaveStoppedAt('bump')
  expect(proc).toHaveRegister('edi', 1)
  expect(proc).toHaveMemory('g_counter', new Uint8Array([0, 0, 0, 0]))
  expect(proc).toMatchProcessSnapshot()
  await proc.cont()
  expect(proc).toMatchProcessSnapshot('second call')
  await proc.wait()
  expect(proc).toHaveExited(0)
})
