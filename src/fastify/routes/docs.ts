/**
 * Interactive docs served from the package, never a CDN (SPEC §2.3): `/openapi.json`,
 * Swagger UI at `/docs` (assets from swagger-ui-dist) and ReDoc
 * at `/redoc` (redoc's standalone bundle). The pages load `/openapi.json`, so the password
 * flow's relative `tokenUrl: "token"` resolves to `/token`, as in FastAPI.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const require = createRequire(import.meta.url);
const swaggerUiStatic = join(dirname(require.resolve('swagger-ui-dist/package.json')));
const redocBundles = join(dirname(require.resolve('redoc/package.json')), 'bundles');

const swaggerHtml = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title} - Swagger UI</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script>
</body>
</html>`;

const swaggerInit = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  oauth2RedirectUrl: window.location.origin + '/docs/static/oauth2-redirect.html',
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});`;

const redocHtml = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title} - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<!-- ReDoc's sidebar footer always loads its logo from cdn.redoc.ly (no option turns it off);
     refusing remote images keeps the page from calling another host, and the logo hides itself. -->
<meta http-equiv="Content-Security-Policy" content="img-src 'self' data:">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/static/redoc.standalone.js"></script>
</body>
</html>`;

export async function docsRoutes(app: FastifyInstance, options: { title?: string } = {}): Promise<void> {
  const title = options.title ?? 'Portcullis';
  const hidden = { hide: true };
  app.get('/openapi.json', { schema: hidden }, async () => app.swagger());
  app.get('/docs', { schema: hidden }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(swaggerHtml(title)));
  app.get('/docs/swagger-init.js', { schema: hidden }, async (_request, reply) => reply.type('application/javascript; charset=utf-8').send(swaggerInit));
  app.get('/redoc', { schema: hidden }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(redocHtml(title)));
  await app.register(fastifyStatic, { root: swaggerUiStatic, prefix: '/docs/static/', decorateReply: false, schemaHide: true, allowedPath: (path) => /^\/(swagger-ui(-bundle)?\.(js|css)|oauth2-redirect\.(html|js)|favicon-(16x16|32x32)\.png)$/.test(path) });
  await app.register(fastifyStatic, { root: redocBundles, prefix: '/redoc/static/', decorateReply: false, schemaHide: true, allowedPath: (path) => path === '/redoc.standalone.js' });
}
