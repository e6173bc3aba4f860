// Lint config: typescript-eslint's type-aware recommended rules over src/, test/, bench/ and demo/.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // examples/ import 'procsnap' as a user would; test/examples.test.ts runs them against src/.
  { ignores: ['dist/**', 'build/**', 'scratch/**', 'node_modules/**', 'fixtures/**', 'examples/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
)
