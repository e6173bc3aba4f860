// CPUID and XGETBV, which only machine code can ask: 45 bytes of ours in an executable page (code-page.ts).
import { executableCode } from './code-page.js'
import { callPointer } from './libc.js'

// GNU as, intel syntax; void fn(uint32_t leaf_or_index, uint32_t subleaf, uint32_t *out, int xgetbv):
//   push rbx; mov r8,rdx; test ecx,ecx; jnz 1f
//   mov eax,edi; mov ecx,esi; cpuid; mov [r8],eax; mov [r8+4],ebx; mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret
// 1: mov ecx,edi; xgetbv; mov [r8],eax; mov [r8+4],edx; pop rbx; ret
const CODE = Buffer.from(
  '534989d085c9751789f889f10fa241890041895804418948084189500c5bc389f90f01d0418900418950045bc3',
  'hex',
)
const PROTOTYPE = 'void procsnap_cpuid(uint32_t leaf, uint32_t sub, uint32_t *out, int xgetbv)'

let code: unknown
let tried = false

function loaded(): unknown {
  if (!tried) code = executableCode(CODE)
  tried = true
  return code
}

/** [eax, ebx, ecx, edx] of CPUID leaf/subleaf on this CPU; undefined where it cannot be run. */
export function cpuid(leaf: number, subleaf = 0): [number, number, number, number] | undefined {
  const fn = loaded()
  if (fn === undefined) return undefined
  const out = new Uint32Array(4)
  callPointer(fn, PROTOTYPE, leaf, subleaf, out, 0)
  return [out[0] ?? 0, out[1] ?? 0, out[2] ?? 0, out[3] ?? 0]
}

/** XCR<index> (XCR0: the xsave state components the OS enabled); undefined without OSXSAVE. */
export function xgetbv(index = 0): bigint | undefined {
  const leaf1 = cpuid(1)
  const fn = loaded()
  if (!leaf1 || fn === undefined || (leaf1[2] & (1 << 27)) === 0) return undefined
  const out = new Uint32Array(4)
  callPointer(fn, PROTOTYPE, index, 0, out, 1)
  return (BigInt(out[1] ?? 0) << 32n) | BigInt(out[0] ?? 0)
}
