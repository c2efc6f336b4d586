/**
 * `portcullis/fastify`: the plugin an app registers (it adds `POST /token`, `request.user`
 * and per-route `config.auth`), its options, and the error renderer for apps that keep their
 * own error handler. The server's route modules are internal.
 */
export { DEFAULT_SECURITY_SCHEME, oauth2SecurityScheme, portcullis, type AuthRequirement, type PortcullisPluginOptions } from './plugin.ts';
export { renderError } from './render-error.ts';
