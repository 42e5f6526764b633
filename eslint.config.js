// ESLint flat config: the recommended sets plus typescript-eslint's type-aware rules, which catch
// promises nobody awaits or handles, promises passed where a callback's result is ignored, and `any`
// leaking out of JSON.parse or untyped modules. No stylistic rules: Prettier owns the layout.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Build output, coverage reports and installed packages are generated, not written.
  globalIgnores(['dist/', 'coverage/', '.nyc_output/', 'node_modules/', 'docs-api/']),
  {
    // A disable comment that no longer silences anything is an error, so each one stays true.
    linterOptions: { reportUnusedDisableDirectives: 'error', reportUnusedInlineConfigs: 'error' },
  },
  // Every file, including plain JavaScript (this file, the user-plugin fixtures), which is outside
  // tsconfig.json and so gets no type-aware rules.
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // Type information comes from tsconfig.json, which covers src, test, bench and examples.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The rules that catch real bugs, listed even though recommendedTypeChecked has them, so that
      // no later change to the preset turns them off silently.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unsafe-assignment': 'error',
      '@typescript-eslint/no-unsafe-call': 'error',
      '@typescript-eslint/no-unsafe-member-access': 'error',
      '@typescript-eslint/no-unsafe-return': 'error',
      '@typescript-eslint/no-unsafe-argument': 'error',
      // A leading underscore marks a parameter an interface method declares but this one ignores;
      // fields named beside a rest element are how an object is copied without them.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
);
