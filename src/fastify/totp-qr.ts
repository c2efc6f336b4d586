/**
 * The QR code of a TOTP enrollment (SPEC §10): the `otpauth://` URI drawn as an SVG document,
 * for the account page to show as an image (`<img src="data:image/svg+xml;base64,…">`) so a
 * phone can scan it. Drawn on the server with `qrcode`, so the page needs no QR library and no
 * CDN. `qrcode` is loaded on the first enrollment, not at start (docs/benchmarks.md, "Cold start").
 *
 * @example
 * const svg = await totpQrSvg('otpauth://totp/example.com:jane?secret=JBSW…&issuer=example.com');
 * // '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 53 53" …'
 */

let qrcode: Promise<typeof import('qrcode')> | undefined;

/** The QR code of `uri` as an SVG document (error correction M, the standard 4-module quiet zone). */
export async function totpQrSvg(uri: string): Promise<string> {
  qrcode ??= import('qrcode').then((module) => module.default);
  return (await qrcode).toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 });
}
