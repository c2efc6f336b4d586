/**
 * Reads a V8 CPU profile (`node --cpu-prof`) of the server taken during scenario A and says
 * where a request's time goes: CPU per request, self time by package or module, the hottest
 * functions, and the inclusive time of Portcullis's own functions. Only samples inside the
 * measured window count, so start-up and warm-up are left out.
 *
 * @example
 * const profile = summariseProfile(JSON.parse(readFileSync(file, 'utf8')), { fromEndUs, toEndUs, requests, root });
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The JSON written by `node --cpu-prof`. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  ms: number;
  share: number;
  usPerRequest: number;
}

export interface ProfileSummary {
  windowSeconds: number;
  requests: number;
  /** Sampled CPU on the main thread (not idle), per request, microseconds. */
  busyUsPerRequest: number;
  /** Share of the window the main thread was busy. */
  busyShare: number;
  byGroup: ProfileRow[];
  topSelf: ProfileRow[];
  portcullisInclusive: ProfileRow[];
}

function packageOf(url: string): string | undefined {
  const at = url.lastIndexOf('/node_modules/');
  if (at < 0) return undefined;
  const rest = url.slice(at + '/node_modules/'.length).split('/');
  return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
}

/** The bucket a frame's self time is counted in. */
function groupOf(frame: CallFrame, root: string): string {
  const { functionName, url } = frame;
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return 'V8 garbage collector';
  if (functionName === '(program)') return 'native (V8, libuv, llhttp, syscalls)';
  const pkg = packageOf(url);
  if (pkg) return `npm: ${pkg}`;
  if (url.startsWith('node:')) return `node core: ${url.slice(5).replace(/^internal\//, '')}`;
  if (url.includes(`${root}/src/`)) return `portcullis: ${url.slice(url.indexOf(`${root}/src/`) + root.length + 1)}`;
  if (url === '') return `builtin: ${functionName || '(anonymous)'}`;
  return url;
}

function frameName(frame: CallFrame, root: string): string {
  const where = frame.url.replace(/^file:\/\//, '').replace(`${root}/`, '').replace(/^.*\/node_modules\//, '');
  return `${frame.functionName || '(anonymous)'} ${where ? `(${where}:${frame.lineNumber + 1})` : ''}`.trim();
}

/**
 * Summarises the samples between `windowStartUs` and `windowEndUs` after the profile's start
 * (profile clock), for `requests` requests served in that window.
 */
export function summariseProfile(
  profile: CpuProfile,
  options: { windowStartUs: number; windowEndUs: number; requests: number; root: string; top?: number },
): ProfileSummary {
  const root = options.root.replace(/^file:\/\//, '');
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const group = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let windowTotal = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const offset = t - profile.startTime;
    if (offset < options.windowStartUs || offset > options.windowEndUs) continue;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    const leaf = byId.get(profile.samples[i] as number);
    if (!leaf) continue;
    windowTotal += weight;
    const g = groupOf(leaf.callFrame, root);
    group.set(g, (group.get(g) ?? 0) + weight);
    if (g === '(idle)') continue;
    busy += weight;
    const name = frameName(leaf.callFrame, root);
    self.set(name, (self.get(name) ?? 0) + weight);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (!frame || !frame.url.includes(`${root}/src/`)) continue;
      const key = frameName(frame, root);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + weight);
    }
  }
  const requests = Math.max(1, options.requests);
  const rows = (m: Map<string, number>, total: number, limit: number): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => ({ name, ms: us / 1000, share: total > 0 ? us / total : 0, usPerRequest: us / requests }));
  const top = options.top ?? 15;
  return {
    windowSeconds: windowTotal / 1e6,
    requests: options.requests,
    busyUsPerRequest: busy / requests,
    busyShare: windowTotal > 0 ? busy / windowTotal : 0,
    byGroup: rows(new Map([...group].filter(([k]) => k !== '(idle)')), busy, 20),
    topSelf: rows(self, busy, top),
    portcullisInclusive: rows(inclusive, busy, 12),
  };
}
