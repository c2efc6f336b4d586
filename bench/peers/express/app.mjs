// The stack a Node user would reach for instead of Portcullis: Express + jsonwebtoken + argon2,
// written the way FastAPI's JWT tutorial is (in-memory users, HS256 access tokens, argon2id with
// m=65536 KiB, t=3, p=4, a dummy verify for unknown users). The bench starts it with PORT set.
// PEER_ARGON2=@node-rs/argon2 swaps the hashing library when npm's `argon2` cannot load here.
import { createSecretKey } from 'node:crypto';
import express from 'express';
import jwt from 'jsonwebtoken';

const library = process.env.PEER_ARGON2 || 'argon2';
const argon2 = library === 'argon2' ? (await import('argon2')).default : await import('@node-rs/argon2');
const hashOptions = library === 'argon2'
  ? { type: argon2.argon2id, memoryCost: 65536, timeCost: 3, parallelism: 4 }
  : { algorithm: 2, memoryCost: 65536, timeCost: 3, parallelism: 4 };
const verifyPassword = (plain, hashed) =>
  argon2.verify(hashed, plain).catch(() => false);

// A KeyObject made once, as jsonwebtoken's docs allow: given the plain string (as most
// tutorials write it), jsonwebtoken 9 first tries to parse it as a public key on every verify,
// which costs about 0.3 ms a request and would cap this peer near 2,000 req/s.
const SECRET_KEY = createSecretKey(Buffer.from('09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7'));
const ALGORITHM = 'HS256';
const ACCESS_TOKEN_EXPIRE_MINUTES = 30;

const users = new Map([
  ['johndoe', {
    username: 'johndoe',
    full_name: 'John Doe',
    email: 'johndoe@example.com',
    hashed_password: '$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc',
    disabled: false,
  }],
]);
const DUMMY_HASH = await argon2.hash('dummypassword', hashOptions);

const app = express();
app.disable('x-powered-by');
app.use('/token', express.urlencoded({ extended: false, limit: '16kb' }));

app.post('/token', async (req, res) => {
  const { username, password } = req.body ?? {};
  if (typeof username !== 'string' || typeof password !== 'string') {
    return res.status(422).json({ detail: 'username and password are required' });
  }
  const user = users.get(username);
  const ok = await verifyPassword(password, user ? user.hashed_password : DUMMY_HASH);
  if (!user || !ok) {
    return res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'Incorrect username or password' });
  }
  const token = jwt.sign({ sub: user.username }, SECRET_KEY, { algorithm: ALGORITHM, expiresIn: ACCESS_TOKEN_EXPIRE_MINUTES * 60 });
  res.json({ access_token: token, token_type: 'bearer' });
});

function currentActiveUser(req, res, next) {
  const header = req.headers.authorization ?? '';
  const [scheme, token] = header.split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !token) {
    return res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'Not authenticated' });
  }
  let payload;
  try {
    payload = jwt.verify(token, SECRET_KEY, { algorithms: [ALGORITHM] });
  } catch {
    return res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'Could not validate credentials' });
  }
  const user = typeof payload.sub === 'string' ? users.get(payload.sub) : undefined;
  if (!user) return res.status(401).set('WWW-Authenticate', 'Bearer').json({ detail: 'Could not validate credentials' });
  if (user.disabled) return res.status(400).json({ detail: 'Inactive user' });
  req.user = user;
  next();
}

app.get('/users/me', currentActiveUser, (req, res) => {
  const { username, email, full_name, disabled } = req.user;
  res.json({ username, email, full_name, disabled });
});

app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));

app.listen(Number(process.env.PORT ?? 8000), process.env.HOST ?? '127.0.0.1');
