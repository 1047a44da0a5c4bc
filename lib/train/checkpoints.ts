// Checkpoints of the training loop: written into a staging directory and swapped in, so
// one complete copy exists at every moment; read back for an exact resume.
import * as fs from 'fs';
import * as path from 'path';

import { writeError, writeFileSynced } from '../core/files';
import { Module } from '../core/module';
import { globalGeneratorState, setGlobalGeneratorState, tensor } from '../core/tensor';
import { Trainer } from '../core/trainer';
import { EpochRecord, FitResult } from './types';

export const CHECKPOINT_VERSION = 1;

/** Replaces directory `target` with the complete directory `staging` so that at every moment one complete copy exists. */
function replaceDir(staging: string, target: string): void {
  const old = `${target}.old`;
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(target)) fs.renameSync(target, old);
  fs.renameSync(staging, target);
  fs.rmSync(old, { recursive: true, force: true });
}

export interface SavedState {
  version: number;
  epoch: number;
  globalStep: number;
  history: EpochRecord[];
  best: FitResult['best'];
  bad: number;
  /** Processes of the run that wrote it (distributed training); absent: 1. */
  worldSize?: number;
}

/**
 * Writes a checkpoint into a staging directory, then swaps it in. A failed write (a full
 * disk, a read-only file system) rejects with an error naming the file and the cause; the
 * previous checkpoint stays as it was and the staging directory is removed.
 */
export async function writeCheckpoint(trainer: Trainer, dir: string, name: string, state: SavedState): Promise<string> {
  const where = 'fit: checkpoint';
  const staging = path.join(dir, `.staging-${name}-${process.pid}`);
  const target = path.join(dir, name);
  const removeStaging = () => {
    try {
      fs.rmSync(staging, { recursive: true, force: true });
    } catch {
      // nothing better to do; the write's own error is reported
    }
  };
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging);
  } catch (e) {
    throw writeError(where, staging, e);
  }
  try {
    // Module.save and saveState reject with a TorchError that names the file and the cause.
    await trainer.module.save(path.join(staging, 'model.pt'));
    await trainer.saveState(path.join(staging, 'optimizer.pt'));
    writeFileSynced(where, path.join(staging, 'rng.bin'), Buffer.from((globalGeneratorState().toTypedArray() as Uint8Array).buffer));
    // state.json last: a directory with it is complete.
    writeFileSynced(where, path.join(staging, 'state.json'), JSON.stringify(state, null, 2));
  } catch (e) {
    removeStaging();
    throw e;
  }
  try {
    replaceDir(staging, target);
  } catch (e) {
    removeStaging();
    throw writeError(where, target, e);
  }
  return target;
}

/** Where a checkpoint directory's complete `last` state is (the `.old` copy if a replace was cut short). */
export function findLast(dir: string): string {
  for (const candidate of [path.join(dir, 'last'), path.join(dir, 'last.old')]) {
    if (fs.existsSync(path.join(candidate, 'state.json'))) return candidate;
  }
  throw new Error(`fit: no checkpoint to resume in '${dir}' (expected ${path.join(dir, 'last', 'state.json')})`);
}

export async function restoreCheckpoint(trainer: Trainer, dir: string): Promise<SavedState> {
  let state: SavedState;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as SavedState;
  } catch (e) {
    throw new Error(`fit: cannot read the checkpoint ${path.join(dir, 'state.json')}: ${(e as Error).message}`);
  }
  if (state.version !== CHECKPOINT_VERSION) throw new Error(`fit: checkpoint '${dir}' has version ${state.version}, expected ${CHECKPOINT_VERSION}`);
  const written = state.worldSize ?? 1;
  const now = trainer.group?.worldSize ?? 1;
  if (written !== now) {
    // The shards, the global batch and the steps per epoch all depend on the world size.
    throw new Error(
      `fit: checkpoint '${dir}' was written by a run of ${written} process(es), but this run has ${now}: resume with ${written} process(es) (the data shards, the global batch and the step count depend on it)`,
    );
  }
  const saved = await Module.load(path.join(dir, 'model.pt'));
  trainer.module.loadStateDict(saved.stateDict());
  await trainer.loadState(path.join(dir, 'optimizer.pt'));
  const rng = fs.readFileSync(path.join(dir, 'rng.bin'));
  setGlobalGeneratorState(tensor(Uint8Array.from(rng)));
  return state;
}
