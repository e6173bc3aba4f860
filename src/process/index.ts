// The live-process layer's public surface.
export { launch, DEFAULT_ENV, type LaunchOptions } from './launch.js'
export { Process, type ContOptions, type WaitOptions } from './process.js'
export { Breakpoint } from './breakpoints.js'
export type { StopEvent, Thread, ExitResult } from './events.js'
export type { MemoryMap } from './maps.js'
export type { Module, Location } from './modules.js'
export type { Registers } from './registers.js'
export { livePids } from './registry.js'
