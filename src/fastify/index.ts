export * from './bearer.ts';
export * from './form.ts';
export * from './plugin.ts';
export * from './render-error.ts';
export { docsRoutes } from './routes/docs.ts';
export { healthRoutes } from './routes/health.ts';
export { tokenRoutes } from './routes/token.ts';
export { publicUserSchema, usersMeRoutes } from './routes/users-me.ts';
