/**
 * Processes for the bench: free loopback ports, servers started and stopped by PID, and what
 * Linux tells about them in /proc (CPU time, resident memory, the machine's own load).
 *
 * @example
 * const server = await startProcess({ name: 'portcullis', command: 'node', args: ['dist/bin.js', 'serve'], port });
 * const ready = await waitForHealthy(server, `http://127.0.0.1:${port}/healthz`, 15_000);
 * await stopProcess(server);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A server the bench started; `output` keeps the last lines it wrote, for error messages. */
export interface BenchProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  /** performance.now() at spawn. */
  spawnedAt: number;
  output: string[];
  exited: Promise<number | null>;
}

/** The processes started and not yet exited, so an interrupted bench can stop them by PID. */
export const running = new Set<BenchProcess>();

/** Asks the kernel for a free port on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Spawns a process with its own environment; its output is kept (bounded), not shown. */
export function startProcess(options: {
  name: string;
  command: string;
  args: readonly string[];
  env: Record<string, string | undefined>;
  cwd?: string;
}): BenchProcess {
  const spawnedAt = performance.now();
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(line);
    if (output.length > 200) output.splice(0, output.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const proc: BenchProcess = { name: options.name, child, pid: child.pid, spawnedAt, output, exited: Promise.resolve(null) };
  running.add(proc);
  proc.exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(proc);
      resolve(code);
    }),
  );
  return proc;
}

/**
 * Polls `url` until it answers 200; returns milliseconds from spawn to that answer (the cold
 * start). Throws with the process's last output when it exits or `timeoutMs` passes.
 */
export async function waitForHealthy(proc: BenchProcess, url: string, timeoutMs: number): Promise<number> {
  let exitCode: number | null | undefined;
  void proc.exited.then((code) => (exitCode = code));
  const deadline = proc.spawnedAt + timeoutMs;
  while (performance.now() < deadline) {
    if (exitCode !== undefined) break;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - proc.spawnedAt;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const tail = proc.output.slice(-15).join('\n');
  throw new Error(`${proc.name} did not become healthy (${exitCode !== undefined ? `exited with ${exitCode}` : `no 200 from ${url} within ${timeoutMs} ms`})${tail ? `:\n${tail}` : ''}`);
}

/** SIGTERM by PID, then SIGKILL by PID if it has not exited within `graceMs`. */
export async function stopProcess(proc: BenchProcess, graceMs = 5000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([proc.exited, timer])) === 'timeout') {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await proc.exited;
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds in user and kernel mode (all threads, exited threads included) a process has used. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** A line of /proc/PID/status in bytes (VmHWM = peak resident set, VmRSS = resident now). */
export function memoryBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}

/**
 * Resets a process's VmHWM to its current resident set (Linux ≥ 4.0: "5" to clear_refs), so a
 * later VmHWM is the peak of what ran in between. False when the kernel refuses.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Busy and total CPU time of the whole machine, in seconds (from /proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / CLOCK_TICKS, total: (busy + idle + iowait) / CLOCK_TICKS };
}

/** Cores kept busy by everything else on the machine, measured over `ms` while the bench idles. */
export async function backgroundLoad(ms: number): Promise<number> {
  const before = machineCpu();
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineCpu();
  return (after.busy - before.busy) / ((performance.now() - start) / 1000);
}

/** Samples VmRSS every `everyMs` until stopped; returns the highest value seen. */
export function sampleRss(pid: number, everyMs = 100): { stop(): number } {
  let peak = 0;
  const read = (): void => {
    try {
      peak = Math.max(peak, memoryBytes(pid, 'VmRSS'));
    } catch {
      // the process exited
    }
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return peak;
    },
  };
}
