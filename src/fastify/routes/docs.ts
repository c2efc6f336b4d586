/**
 * Interactive docs served from the package, never a CDN (SPEC §2.3): `/openapi.json`,
 * Swagger UI at `/docs` (assets from swagger-ui-dist) and ReDoc
 * at `/redoc` (redoc's standalone bundle). The pages load `/openapi.json`, so the password
 * flow's relative `tokenUrl: "token"` resolves to `/token`, as in FastAPI.
 *
 * The assets are a fixed list of files, served by the small handler below rather than by
 * @fastify/static, whose module graph cost every start ~20 ms for a page few ever open
 * (docs/benchmarks.md, "Cold start").
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

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
  app.get('/docs/static/:file', { schema: hidden }, serveAsset(swaggerUiStatic, SWAGGER_UI_ASSETS));
  app.get('/redoc/static/:file', { schema: hidden }, serveAsset(redocBundles, REDOC_ASSETS));
}

/** The files the pages load; anything else under the prefixes is 404, so no path reaches the disk but these. */
const SWAGGER_UI_ASSETS = new Set(['swagger-ui.css', 'swagger-ui.js', 'swagger-ui-bundle.js', 'oauth2-redirect.html', 'oauth2-redirect.js', 'favicon-16x16.png', 'favicon-32x32.png']);
const REDOC_ASSETS = new Set(['redoc.standalone.js']);
const ASSET_TYPES: Readonly<Record<string, string>> = {
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.png': 'image/png',
};

/**
 * A handler for one of `files` in `root`, with the validators @fastify/static sent: a weak
 * ETag and Last-Modified, answered with 304 when the browser's copy is current (RFC 9110
 * §8.8, §13.1.2), and `Cache-Control: public, max-age=0` (revalidate each time).
 */
function serveAsset(root: string, files: ReadonlySet<string>) {
  return async (request: FastifyRequest<{ Params: { file: string } }>, reply: FastifyReply) => {
    const { file } = request.params;
    if (!files.has(file)) return reply.callNotFound();
    const path = join(root, file);
    const info = await stat(path);
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    reply.header('cache-control', 'public, max-age=0').header('etag', etag).header('last-modified', info.mtime.toUTCString()).type(ASSET_TYPES[extname(file)] ?? 'application/octet-stream');
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*')) return reply.code(304).send();
    return reply.header('content-length', info.size).send(createReadStream(path));
  };
}
