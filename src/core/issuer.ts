/**
 * The issuer in effect (SPEC §1, "issuer"; RFC 8414 §2, RFC 9068 §2.2): the configured issuer
 * when there is one, else the origin the request was addressed to. This is the one place that
 * decides it — the `iss` of new tokens and the metadata's `issuer` (and its URLs' base) both
 * come from here, so an instance answers every client with the name the client used to reach
 * it, whatever port or host the process itself listens on.
 *
 * Without a configured issuer, verification does not pin `iss` (see `createAccessTokens`):
 * the signing keys belong to this deployment alone, so a token they verify was issued by one
 * of its instances, whichever name it was reached by.
 *
 * @example
 * issuerInEffect(undefined, 'http://10.0.0.5:8001') // 'http://10.0.0.5:8001'
 * issuerInEffect('https://auth.example.com', 'http://10.0.0.5:8001') // 'https://auth.example.com'
 */

/** The `iss` of tokens issued with no configured issuer and no request origin (a direct core call). */
export const UNNAMED_ISSUER = 'urn:portcullis';

/**
 * The issuer in effect for a request addressed to `origin` (`scheme://host[:port]`).
 *
 * @example
 * const iss = issuerInEffect(config.issuer, 'http://127.0.0.1:8000');
 */
export function issuerInEffect(configured: string | undefined, origin: string | undefined): string {
  return configured ?? origin ?? UNNAMED_ISSUER;
}
