// Crash reports and signatures: the public surface.
export { crashReport, formatCrashReport, type CrashReport, type CrashMemory, type CrashModule } from './report.js'
export { SIGNATURE_FRAMES } from './signature.js'
export type { Access } from './access.js'
import './capture.js'
export type { Crash } from './capture.js'
