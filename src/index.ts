// procsnap: launch Linux binaries under ptrace, stop them at breakpoints, inspect and assert on their state.
export * from './process/index.js'
export * from './errors.js'
export { readElf, parseElf, type ElfFile, type ElfSymbol } from './elf/index.js'
export * from './snapshot/index.js'
export * from './crash/index.js'
