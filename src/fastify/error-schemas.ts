/**
 * The OpenAPI/JSON response schemas several routes share, written once: the error bodies
 * `render-error.ts` sends, and the empty body of a 204.
 *
 * @example
 * schema: { response: { 404: { description: 'User not found', ...detailSchema } } }
 */

/**
 * A 204 answer: done, no body.
 *
 * @example
 * response: { 204: noContentSchema }
 */
export const noContentSchema = { description: 'Done (no body)', type: 'null' } as const;

/**
 * `{"detail": "…"}`: the body of every Portcullis error outside the OAuth endpoints.
 *
 * @example
 * response: { 409: { description: 'The username is taken', ...detailSchema } }
 */
export const detailSchema = { type: 'object', properties: { detail: { type: 'string' } }, required: ['detail'] } as const;

/**
 * The error body of the token and revocation endpoints: RFC 6749 §5.2's `error` and
 * `error_description`, plus the `detail` every error carries.
 *
 * @example
 * response: { 400: { description: 'Invalid request', ...oauthErrorSchema } }
 */
export const oauthErrorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' }, detail: { type: 'string' } },
} as const;

/**
 * 422 in FastAPI's shape: `{"detail": [{"loc": […], "msg": "…", "type": "…"}]}`.
 *
 * @example
 * response: { 422: validationErrorSchema }
 */
export const validationErrorSchema = {
  description: 'Validation error',
  type: 'object',
  properties: {
    detail: {
      type: 'array',
      items: {
        type: 'object',
        properties: { loc: { type: 'array', items: { type: ['string', 'integer'] } }, msg: { type: 'string' }, type: { type: 'string' } },
        required: ['loc', 'msg', 'type'],
      },
    },
  },
  required: ['detail'],
} as const;
