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
      // Prettier wraps code at 120; what it cannot wrap (strings, comments) stops at 140. Regexes,
      // test names, lint directives and text inside template literals (embedded C or scripts) may run on.
      'max-len': [
        'error',
        {
          code: 140,
          ignoreRegExpLiterals: true,
          ignoreTemplateLiterals: true,
          ignoreUrls: true,
          ignorePattern: '^\\s*(// eslint-|(it|test|describe)(\\.\\w+)*\\()',
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
)
