// The launcher of local workers for data-parallel training (`dropattack train --nproc N`).
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';

import * as is from '../core/is';

/** A TCP port free on this machine now (for the rendezvous of local workers). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Options of {@link launchLocal}. */
export interface LaunchOptions {
  /** Host of the rendezvous. Default 127.0.0.1. */
  masterAddr?: string;
  /** Port of the rendezvous. Default: a free port. */
  masterPort?: number;
  /** Extra environment of every worker. */
  env?: NodeJS.ProcessEnv;
  /** After the first worker fails, how long the others get to exit on SIGTERM before SIGKILL. Default 10000 ms. */
  killGraceMs?: number;
  /** Called with each worker's rank and process when it starts. */
  onStart?: (rank: number, child: ChildProcess) => void;
}

/** How a local job ended. */
export interface LaunchResult {
  /** 0 when every worker exited with 0; else the first failing worker's code (1 for a signal). */
  code: number;
  /** The first worker that failed, and how; null when all succeeded. */
  failed: {
    /** The worker's rank. */
    rank: number;
    /** Its exit code; null when a signal ended it. */
    code: number | null;
    /** The signal that ended it; null when it exited. */
    signal: NodeJS.Signals | null;
  } | null;
}

/**
 * Runs `nproc` workers of `node <args>` on this machine with RANK, WORLD_SIZE, LOCAL_RANK,
 * MASTER_ADDR and MASTER_PORT set (rank 0 serves the rendezvous on a free port). When a
 * worker fails (a non-zero exit or a signal), the others are terminated, so a dead rank
 * ends the job instead of leaving the others waiting. SIGINT and SIGTERM to this process
 * are passed on to the workers.
 */
export async function launchLocal(nproc: number, args: string[], options: LaunchOptions = {}): Promise<LaunchResult> {
  const where = 'launchLocal';
  is.integer(where, 'nproc', nproc, 1);
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw is.invalidType(where, 'args', 'an array of strings', args);
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  const masterPort = options.masterPort ?? (await freePort(masterAddr));
  const grace = options.killGraceMs ?? 10000;
  const children: ChildProcess[] = [];
  let failed: LaunchResult['failed'] = null;
  let killTimer: NodeJS.Timeout | null = null;
  const terminateAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };
  const forward = (signal: NodeJS.Signals) => () => terminateAll(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const exits = Array.from({ length: nproc }, (_, rank) => {
      const child = spawn(process.execPath, args, {
        stdio: 'inherit',
        env: {
          ...process.env,
          ...options.env,
          RANK: String(rank),
          LOCAL_RANK: String(rank),
          WORLD_SIZE: String(nproc),
          LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(masterPort),
        },
      });
      children.push(child);
      options.onStart?.(rank, child);
      return new Promise<void>((resolve) => {
        const done = (code: number | null, signal: NodeJS.Signals | null) => {
          if ((code !== 0 || signal !== null) && failed === null) {
            failed = { rank, code, signal };
            terminateAll('SIGTERM');
            killTimer = setTimeout(() => terminateAll('SIGKILL'), grace);
            killTimer.unref();
          }
          resolve();
        };
        child.on('exit', done);
        child.on('error', () => done(1, null));
      });
    });
    await Promise.all(exits);
  } finally {
    if (killTimer) clearTimeout(killTimer);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  const f = failed as LaunchResult['failed'];
  return { code: f === null ? 0 : f.code !== null && f.code !== 0 ? f.code : 1, failed: f };
}
