/** Portcullis: the public surface. Parts are also published as `portcullis/core`, `/fastify`, `/store`. */
export * from './core/index.ts';
export * from './fastify/index.ts';
export * from './store/index.ts';
export { buildApp, type BuildAppOptions } from './app.ts';
export { startServer, type RunningServer, type StartServerOptions } from './server.ts';
export { openRuntime, type Runtime } from './runtime.ts';
