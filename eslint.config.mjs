// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', '.demo/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // f(...xs) puts every element on the stack: an array of ~100k elements throws "Maximum call
    // stack size exceeded". Loop, concat or use an array literal instead; a spread of an array
    // bounded by a small constant may be allowed with an eslint-disable comment saying why.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'CallExpression > SpreadElement', message: 'No spread of an array into call arguments (unbounded arrays overflow the stack): loop or concat.' },
        { selector: 'NewExpression > SpreadElement', message: 'No spread of an array into constructor arguments (unbounded arrays overflow the stack): loop or concat.' },
      ],
    },
  },
);
