/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { resolve } from 'node:path';

// The Rust server embeds dist/ and serves it from the site root, so every URL is
// absolute from `/`. The dev server proxies the API to a running `wakehub serve`.
const api = process.env.WAKEHUB_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Served as is to phones and laptops alike: no source maps in the embedded output.
    sourcemap: false,
    // GraphiQL is large by nature; its size is not the dashboard's budget
    // (scripts/compress.mjs checks that budget).
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
      onwarn(warning, warn) {
        // GraphiQL's React dependencies mark modules "use client" for server components;
        // it means nothing in a browser bundle.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true },
      '/login': { target: api },
      '/logout': { target: api },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
