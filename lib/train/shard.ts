// Each rank's share of an epoch's batches in data-parallel training (docs/methods.md,
// "Distributed training").

/**
 * Rank `rank`'s share of an epoch's batches: batches rank, rank + worldSize, rank + 2 ·
 * worldSize, … of the source's (seeded, per-epoch) order. The last incomplete round (the
 * remainder of the batch count divided by worldSize) is dropped, so every rank runs the
 * same number of steps; each rank draws every batch of the source to keep the order, and
 * uses its own.
 */
export async function* shardBatches<B>(source: Iterable<B> | AsyncIterable<B>, rank: number, worldSize: number): AsyncGenerator<B> {
  let round: B[] = [];
  for await (const b of source) {
    round.push(b);
    if (round.length === worldSize) {
      yield round[rank];
      round = [];
    }
  }
}
