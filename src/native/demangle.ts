// The toolchain's own C++ demangler, libstdc++'s abi::__cxa_demangle, through koffi. Node links
// libstdc++ (it is in this process already); where it cannot be loaded, names stay as they are.
import koffi from 'koffi'

type CxaDemangle = (name: string, buf: null, length: null, status: Int32Array) => string | null

let cxa: CxaDemangle | null | undefined

function binding(): CxaDemangle | null {
  if (cxa !== undefined) return cxa
  try {
    const lib = koffi.load('libstdc++.so.6')
    // The result is malloc'd: a disposable string is copied, then freed with libc's free.
    const owned = koffi.disposable('procsnap_demangled', 'str')
    cxa = lib.func('__cxa_demangle', owned, ['str', 'void *', 'void *', koffi.out('int *')]) as CxaDemangle
  } catch {
    cxa = null
  }
  return cxa
}

/** `name` demangled by __cxa_demangle (Itanium C++ ABI), or undefined when it is not a mangled name or libstdc++ is missing. */
export function cxaDemangle(name: string): string | undefined {
  const f = binding()
  if (!f) return undefined
  const status = new Int32Array(1)
  const out = f(name, null, null, status)
  return status[0] === 0 && out !== null ? out : undefined
}

/** Whether the C++ demangler could be loaded here. */
export function hasCxaDemangle(): boolean {
  return binding() !== null
}
