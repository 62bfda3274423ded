// Dawn (the native WebGPU of npm `webgpu`) prints warnings with fprintf on the process's own
// stderr, out of JavaScript's reach: on every start it says that two pipeline-layout limits are
// "artificially reduced" (harmless: the kernels use no dynamic offsets), twice in `aqa info`.
// Neither the package nor Dawn offers a switch for it, so node/bin.mjs runs the CLI as a child
// whose stderr (fd 2, where Dawn writes) comes through this filter, while the CLI's own stderr
// output goes straight to the terminal on fd 3 (so progress bars still see a TTY). Plain
// JavaScript: the parent process must start without the TypeScript loader.

import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { WriteStream, isatty } from 'node:tty';
import { Console } from 'node:console';

/** Set in the child: the fd its stderr output goes to. */
export const STDERR_FD_ENV = 'AQA_STDERR_FD';
/** Set to 1 to see Dawn's stderr unfiltered (and run the CLI in one process). */
export const RAW_STDERR_ENV = 'AQA_RAW_STDERR';

/** Lines Dawn prints that say nothing a user can act on. Everything else passes. */
const NOISE = [/^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/];

export function isDawnNoise(line) {
  return NOISE.some((re) => re.test(line));
}

/** Copy `input` to `output` line by line, leaving out Dawn's noise lines. Resolves at the end. */
export function filterLines(input, output) {
  return new Promise((resolve) => {
    let rest = '';
    input.setEncoding('utf8');
    input.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      const kept = lines.filter((l) => !isDawnNoise(l.replace(/\r$/, '')));
      if (kept.length) output.write(`${kept.join('\n')}\n`);
    });
    input.on('end', () => {
      if (rest && !isDawnNoise(rest)) output.write(rest);
      resolve();
    });
  });
}

/**
 * In the parent: run this same script as a child with the same arguments, its fd 2 piped through
 * the filter and our stderr passed as its fd 3; exit as the child did (same code, same signal).
 * Returns false where filtering is off (AQA_RAW_STDERR=1, Windows), to run in this process.
 */
export function runFiltered(script) {
  if (process.env[STDERR_FD_ENV] || process.env[RAW_STDERR_ENV] === '1' || process.platform === 'win32') return false;
  // Help never starts Dawn: spare it the second process.
  const args = process.argv.slice(2);
  if (!args.length || args.some((a) => a === '-h' || a === '--help' || a === 'help')) return false;
  const child = spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'pipe', 2],
    env: { ...process.env, [STDERR_FD_ENV]: '3' },
  });
  // A signal to this process is passed on, and this one then exits as the child did (Ctrl-C
  // reaches both anyway: they share the terminal's process group).
  const forward = (sig) => child.kill(sig);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, forward);
  child.on('error', (e) => {
    process.stderr.write(`aqa: could not start the CLI process: ${e.message}\n`);
    process.exit(1);
  });
  const filtered = filterLines(child.stderr, process.stderr);
  child.on('close', async (code, signal) => {
    await filtered;
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
  return true;
}

/** writeSync until all is written; waits out EAGAIN (the fd may be a pipe another process made non-blocking). */
function writeAllSync(fd, chunk) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let off = 0;
  while (off < chunk.length) {
    try {
      off += writeSync(fd, chunk, off, chunk.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** In the child: send process.stderr and console.error to the fd the parent gave us. */
export function useStderrFd() {
  const fd = Number(process.env[STDERR_FD_ENV]);
  if (!fd) return;
  // Synchronous writes, as Node's own stderr: the CLI ends with process.exit, which must not
  // drop a last message still queued.
  const stream = isatty(fd)
    ? new WriteStream(fd)
    : new Writable({
        write(chunk, _enc, done) {
          try {
            writeAllSync(fd, chunk);
            done();
          } catch (e) {
            done(e);
          }
        },
      });
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stream });
  globalThis.console = new Console({ stdout: process.stdout, stderr: stream });
}
