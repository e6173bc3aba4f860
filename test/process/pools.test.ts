import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

describe('inside Vitest worker threads', () => {
  it("runs the basics and stepping suites under pool: 'threads' and leaves nothing behind", () => {
    const raw = execFileSync(
      'npx',
      [
        'vitest',
        'run',
        '--pool',
        'threads',
        '--reporter',
        'dot',
        'test/process/basics.test.ts',
        'test/process/stepping.test.ts',
      ],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: 'true', NO_COLOR: '1' }, timeout: 120_000 },
    )
    const out = raw.replace(/\u001b\[[0-9;]*m/g, '')
    expect(out).toMatch(/Test Files\s+2 passed/)
    const stray = execFileSync('ps', ['-eo', 'stat=,comm='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^[TZ]/.test(l.trim()) && /counter|recursion|counter-O2/.test(l))
    expect(stray).toEqual([])
  }, 150_000)
})
