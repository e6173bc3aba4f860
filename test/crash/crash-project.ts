// A Vitest test file with two crash goldens (toMatchCrashReport), for the golden and review tests:
// 'parser crash' dies as PROCSNAP_E2E_CRASH says (default: a NULL write), 'clean run' as
// PROCSNAP_E2E_CLEAN says (default: it exits 0).
import { fixture } from '../helpers.js'

export const CRASH_TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'
import { processMatchers } from 'procsnap/matchers'
expect.extend(processMatchers)

const run = async (mode) => {
  const proc = await launch(${JSON.stringify(fixture('crashes'))}, { args: [mode], crash: 'snapshot', stdout: 'ignore', stderr: 'ignore' })
  await proc.wait()
  return proc
}

test('parser crash', async () => {
  expect(await run(process.env.PROCSNAP_E2E_CRASH ?? 'write')).toMatchCrashReport()
})

test('clean run', async () => {
  expect(await run(process.env.PROCSNAP_E2E_CLEAN ?? 'none')).toMatchCrashReport()
})
`
