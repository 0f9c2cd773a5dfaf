// ESLint (flat config) for the page's JavaScript: web/src (bundled for browsers), the offline
// shell web/sw.js (a service worker) and web/build.mjs (Node), and the same for the TipTap
// example (examples/tiptap_room) and its test helper. Run by scripts/test (npm run check:web):
//   node_modules/.bin/eslint web examples/tiptap_room tests/richtext/tiptap_markdown.mjs
// Types are checked separately: node_modules/.bin/tsc -p web/tsconfig.json
import js from '@eslint/js'
import globals from 'globals'

export default [
  { ignores: ['web/dist/**', 'examples/tiptap_room/dist/**'] },
  js.configs.recommended,
  {
    files: ['web/src/**/*.js', 'examples/tiptap_room/src/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.browser }
  },
  {
    files: ['web/sw.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'script', globals: globals.serviceworker }
  },
  {
    files: [
      'web/build.mjs',
      'eslint.config.js',
      'examples/tiptap_room/*.mjs',
      'tests/richtext/tiptap_markdown.mjs'
    ],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.node }
  },
  {
    rules: {
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-implicit-globals': 'error',
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'all' }]
    }
  }
]
