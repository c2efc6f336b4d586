/**
 * A real SMTP server for tests (smtp-server, on 127.0.0.1): it accepts every mail, keeps it,
 * and decodes what a test checks — the envelope, the headers, the plain-text and HTML
 * bodies. Not a mock transport: Portcullis's sender talks SMTP to it over TCP. It can start on
 * a port chosen beforehand (a service configured while the server is down, SMTP outage tests)
 * and refuse recipients for good (`refuse`, 550).
 */
import { SMTPServer } from 'smtp-server';

export interface CapturedMail {
  envelopeFrom: string;
  envelopeTo: string[];
  headers: Map<string, string>;
  subject: string;
  text: string;
  html: string;
  raw: string;
}

export interface SmtpCatcher {
  port: number;
  url: string;
  mails: CapturedMail[];
  /** Resolves once `n` mails arrived (polling, bounded by `ms`); rejects after that. */
  waitForMails(n: number, ms?: number): Promise<CapturedMail[]>;
  close(): Promise<void>;
}

/** Unfolds and splits a header block. */
function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0) headers.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
  }
  return headers;
}

/** RFC 2047 encoded words (=?UTF-8?Q?…?= / =?UTF-8?B?…?=) decoded. */
function decodeWords(value: string): string {
  return value.replace(/=\?utf-8\?([qb])\?([^?]*)\?=\s*/gi, (_, kind: string, text: string) =>
    kind.toLowerCase() === 'b' ? Buffer.from(text, 'base64').toString('utf8') : decodeQuotedPrintable(text.replace(/_/g, ' ')),
  );
}

function decodeQuotedPrintable(text: string): string {
  const bytes = text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, hex: string) => `%${hex}`);
  return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, '%25'));
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch ((encoding ?? '').toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return body;
  }
}

/** The text/plain and text/html parts of a message (single part or multipart). */
function bodies(headers: Map<string, string>, body: string): { text: string; html: string } {
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!/^multipart\//i.test(type) || !boundary) {
    const decoded = decodeBody(body, headers.get('content-transfer-encoding'));
    return /^text\/html/i.test(type) ? { text: '', html: decoded } : { text: decoded, html: '' };
  }
  const result = { text: '', html: '' };
  for (const part of body.split(`--${boundary}`).slice(1)) {
    if (part.startsWith('--')) break;
    const split = part.indexOf('\r\n\r\n');
    const partHeaders = parseHeaders(part.slice(0, split).replace(/^\r\n/, ''));
    const inner = bodies(partHeaders, part.slice(split + 4).replace(/\r\n$/, ''));
    result.text ||= inner.text;
    result.html ||= inner.html;
  }
  return result;
}

/** Parses one raw message. */
export function parseMail(raw: string, envelope: { from: string; to: string[] }): CapturedMail {
  const split = raw.indexOf('\r\n\r\n');
  const headers = parseHeaders(raw.slice(0, split));
  const { text, html } = bodies(headers, raw.slice(split + 4));
  return { envelopeFrom: envelope.from, envelopeTo: envelope.to, headers, subject: decodeWords(headers.get('subject') ?? ''), text, html, raw };
}

/** Starts the catcher on `port` (0: any free one). Recipients in `refuse` get 550 (a permanent refusal). */
export async function startSmtpCatcher(options: { port?: number; refuse?: readonly string[] } = {}): Promise<SmtpCatcher> {
  const mails: CapturedMail[] = [];
  const refuse = new Set(options.refuse ?? []);
  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP on loopback: no certificate for the client to check.
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (refuse.has(address.address)) {
        const error = new Error('No such mailbox') as Error & { responseCode: number };
        error.responseCode = 550;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        mails.push(parseMail(Buffer.concat(chunks).toString('utf8'), { from, to: session.envelope.rcptTo.map((r) => r.address) }));
        callback();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    async waitForMails(n, ms = 15_000) {
      const deadline = Date.now() + ms;
      while (mails.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} mails within ${ms} ms, got ${mails.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return mails;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The token of the first account link (`…#token=…`) in a text. */
export function tokenIn(text: string): string {
  const match = /#token=([A-Za-z0-9_-]+)/.exec(text);
  if (!match) throw new Error(`no token link in ${JSON.stringify(text.slice(0, 300))}`);
  return match[1] as string;
}
