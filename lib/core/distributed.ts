// Data-parallel training across processes: the process group (LibTorch's c10d, Gloo on
// the CPU) and the conventional environment (as torchrun sets it). The sharding of an
// epoch's batches is train/shard.ts, the launcher of local workers app/launch.ts.
// docs/methods.md ("Distributed training") defines what a step computes; README
// ("Several processes and several machines") how to run it.
import * as is from './is';
import { native, NativeProcessGroup } from './native';
import { Tensor } from './tensor';

/** Where a process stands in a job, as torchrun's environment says it. */
export interface DistributedEnv {
  /** This process's rank in the job (`RANK`), in [0, worldSize). */
  rank: number;
  /** The number of processes in the job (`WORLD_SIZE`). */
  worldSize: number;
  /** This process's rank on its machine (`LOCAL_RANK`; default: `rank`). */
  localRank: number;
  /** Host of rank 0's TCPStore (`MASTER_ADDR`; default 127.0.0.1). */
  masterAddr: string;
  /** Port of rank 0's TCPStore (`MASTER_PORT`; default 29500). */
  masterPort: number;
}

/** Options of {@link ProcessGroup.init}; each defaults to the environment (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`). */
export interface ProcessGroupOptions {
  /** This process's rank, in [0, worldSize). Default `RANK`, else 0. */
  rank?: number;
  /** The number of processes. Default `WORLD_SIZE`, else 1. */
  worldSize?: number;
  /** Host of rank 0's TCPStore (the rendezvous). Default `MASTER_ADDR`, else 127.0.0.1. */
  masterAddr?: string;
  /** Port of rank 0's TCPStore. Default `MASTER_PORT`, else 29500. */
  masterPort?: number;
  /**
   * How long the rendezvous and each collective may wait for the other ranks before
   * failing (a dead or stuck rank ends the job with an error instead of a hang).
   * Default `DROPATTACK_DIST_TIMEOUT_MS`, else 300000 (5 minutes).
   */
  timeoutMs?: number;
  /** `'gloo'` (CPU; the default) or `'nccl'` (a build whose LibTorch has CUDA and NCCL). */
  backend?: 'gloo' | 'nccl';
}

/** Whether this build of the addon can train across processes, and on which backends. */
export function distributedInfo(): {
  /** Whether a {@link ProcessGroup} can be made. */
  available: boolean;
  /** Its backends: `'gloo'`, and `'nccl'` in a build with CUDA and NCCL; none without distributed support. */
  backends: string[];
} {
  return native.distributedInfo();
}

function envInt(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw new RangeError(`distributed: environment variable ${name} must be an integer >= ${min}, got '${raw}'`);
  }
  return Number(raw);
}

/**
 * The job this process belongs to, read from `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
 * `MASTER_ADDR` and `MASTER_PORT` (torchrun's names); null when `WORLD_SIZE` is unset.
 * A set but malformed variable is a RangeError naming it.
 */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | null {
  const worldSize = envInt(env, 'WORLD_SIZE', 1);
  if (worldSize === undefined) return null;
  const rank = envInt(env, 'RANK', 0);
  if (rank === undefined) throw new RangeError('distributed: WORLD_SIZE is set but RANK is not');
  if (rank >= worldSize) throw new RangeError(`distributed: RANK ${rank} must be below WORLD_SIZE ${worldSize}`);
  const port = envInt(env, 'MASTER_PORT', 1) ?? 29500;
  if (port > 65535) throw new RangeError(`distributed: MASTER_PORT must be in [1, 65535], got ${port}`);
  return {
    rank,
    worldSize,
    localRank: envInt(env, 'LOCAL_RANK', 0) ?? rank,
    masterAddr: env.MASTER_ADDR && env.MASTER_ADDR.length > 0 ? env.MASTER_ADDR : '127.0.0.1',
    masterPort: port,
  };
}

/**
 * A group of processes that train one model together (LibTorch's c10d process group).
 * Made by {@link ProcessGroup.init}, which waits until every rank has joined. Its
 * collectives run off the event loop, one at a time per group; a {@link Trainer} given
 * the group (option `distributed`) uses it in every step.
 */
export class ProcessGroup {
  /** @internal */
  handle: NativeProcessGroup | null;
  /** This process's rank in the group, in [0, worldSize). */
  readonly rank: number;
  /** The number of processes in the group. */
  readonly worldSize: number;
  /** The c10d backend: `'gloo'` or `'nccl'`. */
  readonly backend: string;
  /** Host of rank 0's TCPStore (the rendezvous). */
  readonly masterAddr: string;
  /** Port of rank 0's TCPStore. */
  readonly masterPort: number;

  /** @internal */
  constructor(handle: NativeProcessGroup) {
    this.handle = handle;
    const info = native.processGroupInfo(handle);
    this.rank = info.rank;
    this.worldSize = info.worldSize;
    this.backend = info.backend;
    this.masterAddr = info.masterAddr;
    this.masterPort = info.masterPort;
  }

  /**
   * Joins the job: rank 0 serves the TCPStore at masterAddr:masterPort, the others
   * connect to it. Rejects with the address it tried when the store cannot be reached
   * within `timeoutMs`, and with a clear message when this build has no distributed
   * support.
   */
  static async init(options: ProcessGroupOptions = {}): Promise<ProcessGroup> {
    const where = 'ProcessGroup.init';
    const o = is.options<ProcessGroupOptions>(where, options, ['rank', 'worldSize', 'masterAddr', 'masterPort', 'timeoutMs', 'backend']);
    const env = distributedEnv();
    const worldSize = o.worldSize !== undefined ? is.integer(where, 'worldSize', o.worldSize, 1) : env?.worldSize ?? 1;
    const rank = o.rank !== undefined ? is.integer(where, 'rank', o.rank, 0) : env?.rank ?? 0;
    if (rank >= worldSize) throw is.invalidRange(where, 'rank', `in [0, ${worldSize})`, rank);
    const masterAddr = o.masterAddr ?? env?.masterAddr ?? '127.0.0.1';
    if (typeof masterAddr !== 'string' || masterAddr.length === 0) throw is.invalidType(where, 'masterAddr', 'a host name or address', masterAddr);
    const masterPort = o.masterPort !== undefined ? is.integer(where, 'masterPort', o.masterPort, 1) : env?.masterPort ?? 29500;
    if (masterPort > 65535) throw is.invalidRange(where, 'masterPort', 'in [1, 65535]', masterPort);
    const timeoutMs =
      o.timeoutMs !== undefined ? is.integer(where, 'timeoutMs', o.timeoutMs, 1) : envInt(process.env, 'DROPATTACK_DIST_TIMEOUT_MS', 1) ?? 300000;
    const backend = o.backend === undefined ? 'gloo' : is.oneOf(where, 'backend', o.backend, ['gloo', 'nccl'] as const);
    const info = native.distributedInfo();
    if (!info.available) {
      throw new Error(
        `${where}: this build of dropattack has no distributed support (it needs LibTorch's c10d with Gloo and the Gloo headers: on Debian, apt-get install libgloo-dev, then rebuild with npm run setup)`,
      );
    }
    // Under torchrun, its agent already serves a store on MASTER_PORT.
    const agentStore = process.env.TORCHELASTIC_USE_AGENT_STORE === 'True';
    return new ProcessGroup(await native.processGroupNew({ rank, worldSize, masterAddr, masterPort, timeoutMs, backend, agentStore }));
  }

  /** @internal */
  live(where: string): NativeProcessGroup {
    if (this.handle === null) throw new Error(`${where}: the process group is closed`);
    return this.handle;
  }

  /** Reduces `tensor` across ranks in place (a contiguous tensor); `'mean'` is the sum divided by the world size. */
  allReduce(tensor: Tensor, op: 'sum' | 'mean' | 'max' | 'min' = 'sum'): Promise<void> {
    return Promise.resolve().then(() => {
      if (!(tensor instanceof Tensor)) throw is.invalidType('ProcessGroup.allReduce', 'tensor', 'a Tensor', tensor);
      return native.processGroupAllReduce(this.live('ProcessGroup.allReduce'), tensor.handle, op);
    });
  }

  /** Copies rank `root`'s tensors into every rank's, in place. */
  broadcast(tensors: Tensor | Tensor[], root = 0): Promise<void> {
    return Promise.resolve().then(() => {
      const list = Array.isArray(tensors) ? tensors : [tensors];
      list.forEach((t, k) => {
        if (!(t instanceof Tensor)) throw is.invalidType('ProcessGroup.broadcast', `tensors[${k}]`, 'a Tensor', t);
      });
      return native.processGroupBroadcast(this.live('ProcessGroup.broadcast'), list.map((t) => t.handle), root);
    });
  }

  /** Resolves when every rank has reached it. */
  barrier(): Promise<void> {
    return Promise.resolve().then(() => native.processGroupBarrier(this.live('ProcessGroup.barrier')));
  }

  /** Leaves the group (its connections close); a Trainer on it can no longer step. */
  close(): void {
    if (this.handle === null) return;
    native.processGroupClose(this.handle);
    this.handle = null;
  }
}
