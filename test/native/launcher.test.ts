// The launcher's machine code in src/native/launcher.ts is what src/native/launcher/launcher.c
// compiles to: rebuilt here with gcc, byte for byte when it is the compiler that made the bytes.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { LAUNCHER_COMPILER, buildLauncherElf } from '../../src/native/launcher.js'

const BUILD = fileURLToPath(new URL('../../src/native/launcher/build.sh', import.meta.url))
const HEADER_SIZE = 64 + 56

describe('the launcher', () => {
  const compiler = execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0]
  const built = execFileSync(BUILD, { encoding: 'utf8' }).trim()
  const committed = Buffer.from(buildLauncherElf('x86_64').subarray(HEADER_SIZE)).toString('hex')

  it('builds from launcher.c with gcc, small and without data (one R+X segment)', () => {
    expect(built).toMatch(/^([0-9a-f]{2})+$/)
    expect(built.length / 2).toBeLessThan(2048)
    expect(committed.length / 2).toBeLessThan(2048)
  })

  it.runIf(compiler === LAUNCHER_COMPILER)(`is the committed code (${LAUNCHER_COMPILER}): else run build.sh`, () => {
    expect(committed).toBe(built)
  })
})
