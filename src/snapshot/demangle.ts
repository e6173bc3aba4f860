// Symbol names as people read them: C++ (Itanium ABI) and Rust legacy names demangled by libstdc++'s
// __cxa_demangle, Rust's hash suffix dropped ('core::fmt::write', not '...::h0123456789abcdef').
// Rust v0 names ('_R...') and any name libstdc++ cannot read stay as they are.
import { cxaDemangle } from '../native/demangle.js'

/** Rust legacy mangling: an Itanium nested name whose last part is 'h' and 16 hex digits. */
const RUST_LEGACY = /^_ZN.*17h[0-9a-f]{16}E$/

/** Rust legacy escapes inside identifiers ('$LT$' for '<', '$u7e$' for '~'). */
const RUST_ESCAPES: Readonly<Record<string, string>> = {
  SP: '@',
  BP: '*',
  RF: '&',
  LT: '<',
  GT: '>',
  LP: '(',
  RP: ')',
  C: ',',
}

const cache = new Map<string, string>()

function rustLegacy(text: string): string {
  return text
    .replace(/::h[0-9a-f]{16}$/, '')
    .replace(/\$(SP|BP|RF|LT|GT|LP|RP|C|u[0-9a-f]{2})\$/g, (_, code: string) =>
      code.startsWith('u') ? String.fromCharCode(parseInt(code.slice(1), 16)) : (RUST_ESCAPES[code] ?? code),
    )
    .replace(/\.\./g, '::')
    .replace(/(^|::)_\$/g, '$1$')
}

/** The readable form of a symbol name; the name itself when it is not mangled or cannot be read here. */
export function demangle(name: string): string {
  if (!name.startsWith('_Z')) return name
  let out = cache.get(name)
  if (out === undefined) {
    const text = cxaDemangle(name)
    out = text === undefined ? name : RUST_LEGACY.test(name) ? rustLegacy(text) : text
    cache.set(name, out)
  }
  return out
}
