// The whole setup: the plugin registers the matchers and handles golden files.
import { defineConfig } from 'vitest/config'
import { processSnapshots } from 'procsnap/plugin'

export default defineConfig({ plugins: [processSnapshots()] })
