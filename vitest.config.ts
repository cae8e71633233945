import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC instead of esbuild: Nest's dependency injection needs emitDecoratorMetadata, which esbuild lacks.
export default defineConfig({
  plugins: [
    swc.vite({
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2023',
      },
    }),
  ],
  // Workspace packages export their TypeScript sources under the "source" condition; tests run
  // those, never a stale dist/. Vitest resolves as SSR, which has its own conditions list.
  resolve: { conditions: ['source', 'module', 'node'] },
  ssr: { resolve: { conditions: ['source', 'module', 'node'], externalConditions: ['source'] } },
  test: {
    // The contract suites wait up to 30 s for events; the default 5 s would hide their messages.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['libs/testing/src/global-setup.ts'],
    include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'test/**/*.spec.ts'],
  },
});
