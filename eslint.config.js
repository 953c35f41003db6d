// Lint rules that catch real bugs (floating promises, import cycles, imports across layers); style is
// prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { noImportCycle } from './scripts/lint/no-import-cycle.ts';

/**
 * The layers of src/ (DESIGN.md section 7) and the folders each may import besides its own. service
 * and node speak only through protocol; only node imports connectors; formats and connectors sit side
 * by side on tables, the table model they share; nothing imports cli.
 */
const LAYERS = {
  common: [],
  protocol: ['common'],
  tables: ['common'],
  formats: ['common', 'protocol', 'tables'],
  connectors: ['common', 'protocol', 'tables'],
  node: ['common', 'protocol', 'tables', 'formats', 'connectors'],
  service: ['common', 'protocol'],
  cli: ['common', 'protocol', 'node', 'service'],
};

/** What a layer's tests may import besides: formats and connectors tests run copies through node's executor. */
const TESTS_ALSO = { formats: ['node'], connectors: ['node'] };

function layerRules(layer) {
  const rule = (allowed) => {
    const forbidden = Object.keys(LAYERS).filter((other) => other !== layer && !allowed.includes(other));
    const message = `${layer} may import only ${['its own folder', ...allowed].join(', ')} (eslint.config.js).`;
    return {
      'no-restricted-imports': [
        'error',
        { patterns: forbidden.map((other) => ({ group: [`**/${other}/**`], message })) },
      ],
    };
  };
  return [
    { files: [`src/${layer}/**/*.ts`], ignores: ['**/*.test.ts'], rules: rule(LAYERS[layer]) },
    {
      files: [`src/${layer}/**/*.test.ts`],
      rules: rule([...LAYERS[layer], ...(TESTS_ALSO[layer] ?? [])]),
    },
  ];
}

export default tseslint.config(
  {
    ignores: ['node_modules/', 'ferry-data/', 'bench/work/', 'web/dist/', 'web/.dist-*/', 'test-artifacts/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { ferry: { rules: { 'no-import-cycle': noImportCycle } } },
    rules: {
      'ferry/no-import-cycle': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['it', 'describe', 'test', 'before', 'after', 'suite'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/cli/**'], message: 'Nothing imports cli (DESIGN.md section 7).' }] },
      ],
    },
  },
  { files: ['**/*.js', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  {
    // Tests read JSON answers loosely; production code may not.
    files: ['test/**/*.ts', 'bench/**/*.ts', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  ...Object.keys(LAYERS).flatMap(layerRules),
);
