// The Portcullis account page (SPEC §10): log in (with the TOTP step), profile, sessions,
// password change, TOTP on and off — through the public HTTP API, like any other client.
//
// Plain JavaScript module, no framework, no build step. Rules this file keeps:
// - The tokens live only in the variables of this module: never in Web Storage, IndexedDB or
//   a cookie, so no other script of the origin finds them there and a reload logs out
//   (OWASP HTML5 Security Cheat Sheet, "Local Storage").
// - Every text from the server or the person is rendered with textContent, never as markup
//   (OWASP XSS Prevention Cheat Sheet); the page's CSP enforces Trusted Types, so a markup
//   sink would throw. The QR code is an image (a data: URL), not inserted SVG.
// - Every form is sent by fetch; focus moves to the first field of the next step, and every
//   problem is announced through the alert region.

const TOKEN_PATH = '/token';
const MFA_OTP_GRANT = 'urn:portcullis:params:oauth:grant-type:mfa-otp';
/** The page asks only for the scope it needs (least privilege): `me`. */
const PAGE_SCOPE = 'me';
/** Sessions listed at most (the API's largest page). */
const SESSIONS_PAGE = 200;
/** Readable names of the API's field names, for its 422 messages. */
const FIELD_LABELS = { new_password: 'New password', current_password: 'Current password', code: 'Code', password: 'Password', otp: 'Code', recovery_code: 'Recovery code' };

/** The login, in memory only. */
let tokens = null; // { access, refresh }
let mfaToken = null;

function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

const ui = {
  error: byId('error'),
  notice: byId('notice'),
  loginStep: byId('login-step'),
  loginForm: byId('login-form'),
  loginUsername: byId('login-username'),
  loginPassword: byId('login-password'),
  codeStep: byId('code-step'),
  codeForm: byId('code-form'),
  codeOtp: byId('code-otp'),
  codeRecovery: byId('code-recovery'),
  codeCancel: byId('code-cancel'),
  account: byId('account'),
  profileHeading: byId('profile-heading'),
  profileUsername: byId('profile-username'),
  profileFullName: byId('profile-full-name'),
  profileEmail: byId('profile-email'),
  profileScopes: byId('profile-scopes'),
  logout: byId('logout'),
  sessionsBody: byId('sessions-body'),
  sessionsCaption: byId('sessions-caption'),
  passwordForm: byId('password-form'),
  passwordCurrent: byId('password-current'),
  passwordNew: byId('password-new'),
  totpStatus: byId('totp-status'),
  totpOff: byId('totp-off'),
  totpStart: byId('totp-start'),
  totpEnroll: byId('totp-enroll'),
  totpQr: byId('totp-qr'),
  totpSecret: byId('totp-secret'),
  totpConfirmForm: byId('totp-confirm-form'),
  totpConfirmCode: byId('totp-confirm-code'),
  totpEnrollCancel: byId('totp-enroll-cancel'),
  totpCodes: byId('totp-codes'),
  totpCodesHeading: byId('totp-codes-heading'),
  totpCodesList: byId('totp-codes-list'),
  totpCodesDone: byId('totp-codes-done'),
  totpOn: byId('totp-on'),
  totpDisableForm: byId('totp-disable-form'),
  totpDisablePassword: byId('totp-disable-password'),
};

// ---- Messages ---------------------------------------------------------------------------

function showError(message) {
  ui.notice.textContent = '';
  ui.error.textContent = message;
}

function showNotice(message) {
  clearError();
  ui.notice.textContent = message;
}

function clearError() {
  ui.error.textContent = '';
}

function clearMessages() {
  clearError();
  ui.notice.textContent = '';
}

/** An API answer as one sentence: `detail` (string or FastAPI's 422 list), or the OAuth `error_description`. */
function problemText(status, body, retryAfter) {
  let text;
  if (body && Array.isArray(body.detail)) {
    text = body.detail
      .map((item) => {
        const field = Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : undefined;
        const label = FIELD_LABELS[field] ?? field;
        return label ? `${label}: ${item.msg}` : String(item.msg);
      })
      .join('. ');
  } else if (body && typeof body.error_description === 'string') {
    text = body.error_description;
  } else if (body && typeof body.detail === 'string') {
    text = body.detail;
  } else {
    text = `The server answered ${status}.`;
  }
  if (status === 429 && retryAfter && /^\d+$/.test(retryAfter)) text += ` Try again in ${formatWait(Number(retryAfter))}.`;
  return text;
}

function formatWait(seconds) {
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/** Thrown for an answer that is not a success; `message` is what the person reads. */
class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(problemText(status, body, retryAfter));
    this.status = status;
    this.body = body;
  }
}

// ---- HTTP -------------------------------------------------------------------------------

/** A request to this server: no cookies, no cache, no referrer. Answers `{ status, body, headers }`. */
async function send(method, path, { json, form, bearer } = {}) {
  const headers = { accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  }
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer' });
  } catch {
    throw new ApiError(0, { detail: 'The server could not be reached. Check your connection and try again.' });
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Thrown when the login is gone (ended elsewhere, expired): the page has logged out. */
class LoggedOut extends Error {}

/**
 * A request with the access token. A 401 means the access token expired or its session ended:
 * one refresh (RFC 6749 §6) is tried; if that fails too, the page logs out.
 */
async function authed(method, path, json) {
  if (!tokens) throw new LoggedOut();
  let answer = await send(method, path, { json, bearer: tokens.access });
  if (answer.status === 401 && (await refresh())) answer = await send(method, path, { json, bearer: tokens.access });
  if (answer.status === 401) {
    endLogin('You are logged out: this session has ended or expired. Log in again.');
    throw new LoggedOut();
  }
  if (answer.status >= 400) throw new ApiError(answer.status, answer.body, answer.headers.get('retry-after'));
  return answer;
}

let refreshing = null;

/** One refresh at a time: requests that met a 401 together share it (the refresh token rotates). */
function refresh() {
  if (!tokens) return Promise.resolve(false);
  refreshing ??= refreshOnce().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function refreshOnce() {
  try {
    const answer = await send('POST', TOKEN_PATH, { form: { grant_type: 'refresh_token', refresh_token: tokens.refresh } });
    if (answer.status !== 200 || !answer.body || !tokens) return false;
    keepTokens(answer.body);
    return true;
  } catch {
    return false;
  }
}

function keepTokens(body) {
  tokens = { access: body.access_token, refresh: body.refresh_token };
}

// ---- Steps ------------------------------------------------------------------------------

function showStep(step) {
  ui.loginStep.hidden = step !== 'login';
  ui.codeStep.hidden = step !== 'code';
  ui.account.hidden = step !== 'account';
}

/** Forgets the login and everything shown of the account, and goes back to the login form. */
function endLogin(notice) {
  tokens = null;
  mfaToken = null;
  for (const element of [ui.profileUsername, ui.profileFullName, ui.profileEmail, ui.profileScopes, ui.totpStatus, ui.totpSecret]) element.textContent = '';
  ui.sessionsBody.replaceChildren();
  ui.totpCodesList.replaceChildren();
  ui.totpQr.removeAttribute('src');
  for (const form of [ui.loginForm, ui.codeForm, ui.passwordForm, ui.totpConfirmForm, ui.totpDisableForm]) form.reset();
  showStep('login');
  if (notice) showNotice(notice);
  else clearMessages();
  ui.loginUsername.focus();
}

/** Runs the work of a form or a button with its buttons disabled, showing any problem; `LoggedOut` was already shown. */
async function busy(element, work) {
  const buttons = element instanceof HTMLButtonElement ? [element] : [...element.querySelectorAll('button')];
  for (const button of buttons) button.disabled = true;
  try {
    await work();
  } catch (error) {
    if (error instanceof LoggedOut) return;
    showError(error instanceof ApiError ? error.message : 'Something went wrong on this page. Reload it and try again.');
    if (!(error instanceof ApiError)) console.error(error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function onSubmit(form, handler) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(form, handler);
  });
}

function onClick(button, handler) {
  button.addEventListener('click', () => void busy(button, handler));
}

// Log in: the password grant, for the page's scope only.
onSubmit(ui.loginForm, async () => {
  clearMessages();
  const username = ui.loginUsername.value;
  const password = ui.loginPassword.value;
  if (!username || !password) {
    showError('Enter your username and password.');
    (username ? ui.loginPassword : ui.loginUsername).focus();
    return;
  }
  const answer = await send('POST', TOKEN_PATH, { form: { grant_type: 'password', username, password, scope: PAGE_SCOPE } });
  ui.loginPassword.value = '';
  if (answer.status === 403 && answer.body?.error === 'mfa_required') {
    // SPEC §10: the password was right; the code goes with the mfa_token (5 minutes, single use).
    mfaToken = answer.body.mfa_token;
    ui.codeForm.reset();
    showStep('code');
    ui.codeOtp.focus();
    return;
  }
  if (answer.status !== 200) {
    ui.loginPassword.focus();
    throw new ApiError(answer.status, answer.body, answer.headers.get('retry-after'));
  }
  keepTokens(answer.body);
  await openAccount();
});

// The code step: the mfa-otp grant with the app's code or a recovery code.
onSubmit(ui.codeForm, async () => {
  clearMessages();
  const otp = ui.codeOtp.value.trim();
  const recoveryCode = ui.codeRecovery.value.trim();
  if (!otp && !recoveryCode) {
    showError('Enter the code from your app, or a recovery code.');
    ui.codeOtp.focus();
    return;
  }
  if (otp && recoveryCode) {
    showError('Enter either the code from your app or a recovery code, not both.');
    ui.codeRecovery.focus();
    return;
  }
  const form = { grant_type: MFA_OTP_GRANT, mfa_token: mfaToken ?? '' };
  if (otp) form.otp = otp;
  else form.recovery_code = recoveryCode;
  const answer = await send('POST', TOKEN_PATH, { form });
  if (answer.status !== 200) {
    const problem = new ApiError(answer.status, answer.body, answer.headers.get('retry-after'));
    if (answer.body?.error_description === 'Invalid or expired mfa_token') {
      // Too slow, or already used: the password step must be done again.
      endLogin();
      showError('The login took too long. Enter your username and password again.');
      return;
    }
    ui.codeForm.reset();
    ui.codeOtp.focus();
    throw problem;
  }
  mfaToken = null;
  keepTokens(answer.body);
  await openAccount();
});

onClick(ui.codeCancel, async () => endLogin());

async function openAccount() {
  await loadAccount();
  showStep('account');
  showNotice('You are logged in.');
  ui.profileHeading.focus();
}

async function loadAccount() {
  await Promise.all([loadProfile(), loadSessions(), loadTotp()]);
}

async function loadProfile() {
  const { body } = await authed('GET', '/users/me');
  ui.profileUsername.textContent = body.username;
  ui.profileFullName.textContent = body.full_name ?? '—';
  ui.profileEmail.textContent = body.email ?? '—';
  ui.profileScopes.textContent = body.scopes.length > 0 ? body.scopes.join(', ') : '(none)';
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

async function loadSessions() {
  const { body, headers } = await authed('GET', `/users/me/sessions?limit=${SESSIONS_PAGE}`);
  const rows = body.map((session) => {
    const row = document.createElement('tr');
    row.dataset.sessionId = session.id;
    if (session.current) row.className = 'current';
    const started = formatTime(session.created_at);
    for (const text of [started, formatTime(session.last_used_at), session.client_address ?? 'unknown', session.user_agent ?? 'unknown']) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    if (session.current) {
      const mark = document.createElement('strong');
      mark.className = 'tag';
      mark.textContent = 'This session';
      row.cells[0].append(' ', mark);
    }
    const action = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'End';
    // The accessible name says which session the button ends.
    const which = document.createElement('span');
    which.className = 'visually-hidden';
    which.textContent = session.current ? ' this session (logs you out)' : ` the session started ${started} from ${session.client_address ?? 'an unknown address'}`;
    button.append(which);
    button.addEventListener('click', () => void busy(button, () => endSession(session, row)));
    action.append(button);
    row.append(action);
    return row;
  });
  ui.sessionsBody.replaceChildren(...rows);
  const total = Number(headers.get('x-total-count') ?? body.length);
  ui.sessionsCaption.textContent = total > body.length ? `Your live sessions, newest first (the ${body.length} newest of ${total})` : 'Your live sessions, newest first';
}

async function endSession(session, row) {
  clearMessages();
  await authed('DELETE', `/users/me/sessions/${encodeURIComponent(session.id)}`);
  if (session.current) {
    endLogin('You ended this session and are logged out.');
    return;
  }
  // Keep the focus in the table: on the next row's button, else the previous one's.
  const neighbour = (row.nextElementSibling ?? row.previousElementSibling)?.dataset.sessionId;
  row.remove();
  showNotice('Session ended. That device is logged out.');
  await loadSessions();
  const next = [...ui.sessionsBody.rows].find((candidate) => candidate.dataset.sessionId === neighbour) ?? ui.sessionsBody.rows[0];
  next?.querySelector('button')?.focus();
}

onClick(ui.logout, async () => {
  if (tokens) {
    // Best effort: the session ends on the server; the page forgets the tokens either way.
    await send('POST', '/logout', { bearer: tokens.access }).catch(() => undefined);
  }
  endLogin('You are logged out.');
});

onSubmit(ui.passwordForm, async () => {
  clearMessages();
  const current = ui.passwordCurrent.value;
  const next = ui.passwordNew.value;
  if (!current || !next) {
    showError('Enter your current password and a new one.');
    (current ? ui.passwordNew : ui.passwordCurrent).focus();
    return;
  }
  try {
    await authed('PUT', '/users/me/password', { current_password: current, new_password: next });
  } catch (error) {
    if (error instanceof ApiError) (error.status === 422 ? ui.passwordNew : ui.passwordCurrent).focus();
    throw error;
  }
  ui.passwordForm.reset();
  showNotice('Password changed. Your other sessions are logged out.');
  ui.passwordCurrent.focus();
  await loadSessions();
});

// ---- TOTP -------------------------------------------------------------------------------

function showTotp(part) {
  ui.totpOff.hidden = part !== 'off';
  ui.totpEnroll.hidden = part !== 'enroll';
  ui.totpCodes.hidden = part !== 'codes';
  ui.totpOn.hidden = part !== 'on';
}

async function loadTotp() {
  const { body } = await authed('GET', '/users/me/mfa/totp');
  if (body.status === 'on') {
    ui.totpStatus.textContent = `Two-factor authentication is on. Recovery codes left: ${body.recovery_codes_left}.`;
    showTotp('on');
  } else {
    // A secret still pending (an enrollment left unconfirmed) counts for nothing: start anew.
    ui.totpStatus.textContent = 'Two-factor authentication is off.';
    showTotp('off');
  }
}

/** Base64 of a string's UTF-8 bytes, for a data: URL. */
function base64(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The secret in groups of four, as authenticator apps show and accept it. */
function groupSecret(secret) {
  return secret.match(/.{1,4}/g)?.join(' ') ?? secret;
}

onClick(ui.totpStart, async () => {
  clearMessages();
  const { body } = await authed('POST', '/users/me/mfa/totp');
  // An image, not markup: the SVG cannot run anything or touch the page.
  ui.totpQr.src = `data:image/svg+xml;base64,${base64(body.qr_svg)}`;
  ui.totpSecret.textContent = groupSecret(body.secret);
  ui.totpConfirmForm.reset();
  showTotp('enroll');
  ui.totpStatus.textContent = 'Two-factor authentication is being set up.';
  ui.totpConfirmCode.focus();
});

onSubmit(ui.totpConfirmForm, async () => {
  clearMessages();
  const code = ui.totpConfirmCode.value.trim();
  if (!code) {
    showError('Enter the 6-digit code your app shows.');
    ui.totpConfirmCode.focus();
    return;
  }
  let answer;
  try {
    answer = await authed('POST', '/users/me/mfa/totp/confirm', { code });
  } catch (error) {
    ui.totpConfirmCode.select();
    ui.totpConfirmCode.focus();
    throw error;
  }
  const items = answer.body.recovery_codes.map((recoveryCode) => {
    const item = document.createElement('li');
    const text = document.createElement('code');
    text.textContent = recoveryCode;
    item.append(text);
    return item;
  });
  ui.totpCodesList.replaceChildren(...items);
  ui.totpQr.removeAttribute('src');
  ui.totpSecret.textContent = '';
  ui.totpConfirmForm.reset();
  ui.totpStatus.textContent = 'Two-factor authentication is on.';
  showTotp('codes');
  showNotice('Two-factor authentication is on. Save your recovery codes now.');
  ui.totpCodesHeading.focus();
});

onClick(ui.totpEnrollCancel, async () => {
  ui.totpQr.removeAttribute('src');
  ui.totpSecret.textContent = '';
  ui.totpConfirmForm.reset();
  await loadTotp();
  ui.totpStart.focus();
});

onClick(ui.totpCodesDone, async () => {
  // Shown once: forgotten by the page as well.
  ui.totpCodesList.replaceChildren();
  await loadTotp();
  ui.totpDisablePassword.focus();
});

onSubmit(ui.totpDisableForm, async () => {
  clearMessages();
  const password = ui.totpDisablePassword.value;
  if (!password) {
    showError('Enter your password to turn two-factor authentication off.');
    ui.totpDisablePassword.focus();
    return;
  }
  try {
    await authed('DELETE', '/users/me/mfa/totp', { password });
  } catch (error) {
    ui.totpDisablePassword.select();
    ui.totpDisablePassword.focus();
    throw error;
  }
  ui.totpDisableForm.reset();
  await loadTotp();
  showNotice('Two-factor authentication is off.');
  ui.totpStart.focus();
});

// Start: the script runs, so the login form can be shown (without it the forms stay hidden).
showStep('login');
ui.loginUsername.focus();
