/**
 * Strict `application/x-www-form-urlencoded` parsing for the token and revocation endpoints
 * (RFC 6749 §3.2 and Appendix B): the body must be UTF-8, percent-escapes must be well formed,
 * and a parameter must not appear twice. Lenient parsers guess at such input; an auth server
 * should refuse it with `invalid_request`.
 *
 * @example
 * parseForm(Buffer.from('grant_type=password&username=johndoe')) // { grant_type: 'password', username: 'johndoe' }
 */
import { InvalidRequestError } from '../core/errors.ts';
import { textProblem } from '../core/text.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseForm(body: Buffer): Record<string, string> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new InvalidRequestError('Request body is not valid UTF-8');
  }
  const fields: Record<string, string> = Object.create(null);
  if (text === '') return fields;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replaceAll('+', ' '));
      value = decodeURIComponent(rawValue.replaceAll('+', ' '));
    } catch {
      throw new InvalidRequestError('Request body has a malformed percent-encoding');
    }
    if (Object.hasOwn(fields, name)) {
      // RFC 6749 §3.2: parameters MUST NOT be included more than once.
      throw new InvalidRequestError(`Parameter ${JSON.stringify(name.slice(0, 64))} is repeated`);
    }
    fields[name] = value;
  }
  return fields;
}

/**
 * HTTP Basic client credentials (RFC 6749 §2.3.1: client id and secret are form-encoded, then
 * base64). Returns undefined when the header is absent or another scheme.
 */
export function parseBasicCredentials(header: string | undefined): { clientId: string; clientSecret: string } | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space === -1 || header.slice(0, space).toLowerCase() !== 'basic') return undefined;
  const decoded = Buffer.from(header.slice(space + 1).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw new InvalidRequestError('Malformed HTTP Basic credentials');
  let credentials: { clientId: string; clientSecret: string };
  try {
    credentials = {
      clientId: decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' ')),
      clientSecret: decodeURIComponent(decoded.slice(colon + 1).replaceAll('+', ' ')),
    };
  } catch {
    throw new InvalidRequestError('Malformed HTTP Basic credentials');
  }
  // The client id is stored with the session: no NUL may reach the database (SPEC §4).
  const problem = textProblem(credentials.clientId) ?? textProblem(credentials.clientSecret);
  if (problem) throw new InvalidRequestError(`HTTP Basic credentials ${problem}`);
  return credentials;
}
