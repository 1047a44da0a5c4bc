// The low-level API at work: a small MLP on a noisy two-spiral problem, trained with plain SGD and with
// DropAttack (masked weight adversarial training) on its input and hidden layers, on the
// same data and seed. Prints the losses per epoch and the held-out accuracy of each.
//
// Every DropAttack step follows docs/dropattack.md (clean pass; for each
// attacked group, K masked steps of epsilon * M (.) d / ||d|| with d the clean gradient
// plus the gradients its own steps added, each followed by a forward/backward of L_t / K;
// exact restore; then the optimizer step on the accumulated gradient).
import {
  Generator,
  Tensor,
  crossEntropy,
  perturb,
  randn,
  setNumThreads,
  tensor,
  zeros,
  Perturbation,
} from '../lib';

interface Args {
  epochs: number;
  hidden: number;
  train: number;
  test: number;
  seed: number;
  seeds: number;
  quiet: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { epochs: 80, hidden: 64, train: 300, test: 2000, seed: 1, seeds: 5, quiet: false };
  for (let k = 0; k < argv.length; k++) {
    const [key, inline] = argv[k].replace(/^--/, '').split('=');
    if (key === 'quiet') {
      args.quiet = true;
      continue;
    }
    const value = inline ?? argv[++k];
    if (!(key in args)) throw new TypeError(`demo: unknown option --${key} (known: ${Object.keys(args).join(', ')})`);
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`demo: --${key} must be a positive integer, got '${value}'`);
    (args as unknown as Record<string, number>)[key] = n;
  }
  return args;
}

/** Two interleaved noisy spirals: a classic problem where a small net overfits a small sample. */
function spirals(n: number, seed: number): { x: Tensor; y: Tensor } {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const x = new Float32Array(n * 2);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const t = 0.25 + rnd() * 2.75;
    const angle = t * 2 * Math.PI * 0.55 + cls * Math.PI;
    const r = t / 3;
    x[2 * i] = r * Math.cos(angle) + (rnd() - 0.5) * 0.18;
    x[2 * i + 1] = r * Math.sin(angle) + (rnd() - 0.5) * 0.18;
    y[i] = BigInt(cls);
  }
  return { x: tensor(x, { shape: [n, 2] }), y: tensor(y) };
}

class Mlp {
  readonly params: Record<string, Tensor>;
  constructor(hidden: number, gen: Generator) {
    const init = (shape: number[], fanIn: number) => {
      const t = randn(shape, { generator: gen }).mul(Math.sqrt(2 / fanIn));
      t.requiresGrad = true;
      return t;
    };
    const bias = (n: number) => {
      const t = zeros([n]);
      t.requiresGrad = true;
      return t;
    };
    this.params = {
      'input.weight': init([2, hidden], 2),
      'input.bias': bias(hidden),
      'hidden.weight': init([hidden, hidden], hidden),
      'hidden.bias': bias(hidden),
      'out.weight': init([hidden, 2], hidden),
      'out.bias': bias(2),
    };
  }
  forward(x: Tensor): Tensor {
    const p = this.params;
    const h1 = x.matmul(p['input.weight']).add(p['input.bias']).relu();
    const h2 = h1.matmul(p['hidden.weight']).add(p['hidden.bias']).relu();
    return h2.matmul(p['out.weight']).add(p['out.bias']);
  }
  accuracy(x: Tensor, y: Tensor): number {
    return this.forward(x).argmax(1).eq(y).to('float32').mean().item();
  }
}

interface AttackGroup {
  target: string;
  epsilon: number;
  p: number;
}

interface StepResult {
  clean: number;
  adversarial: number[];
  skipped: number;
}

/** One training step: plain when `groups` is empty, DropAttack-K otherwise. */
function step(model: Mlp, x: Tensor, y: Tensor, groups: AttackGroup[], k: number, seed: number, stepIndex: number): StepResult {
  const params = Object.values(model.params);
  params.forEach((p) => p.zeroGrad());
  const loss0 = crossEntropy(model.forward(x), y);
  loss0.backward();
  const result: StepResult = { clean: loss0.item(), adversarial: [], skipped: 0 };
  groups.forEach((group, g) => {
    const w = model.params[group.target];
    let direction = (w.grad as Tensor).clone();
    const applied: Perturbation[] = [];
    let total = 0;
    for (let t = 0; t < k; t++) {
      // The mask is fixed for the K steps of this batch: same (seed, counter).
      const r = perturb(w, direction, { epsilon: group.epsilon, p: group.p, seed, counter: stepIndex * 64 + g });
      if (r.skipped) result.skipped++;
      applied.push(r);
      const before = (w.grad as Tensor).clone();
      const loss = crossEntropy(model.forward(x), y).div(k);
      loss.backward();
      total += loss.item();
      direction = direction.add((w.grad as Tensor).sub(before));
    }
    for (let t = applied.length - 1; t >= 0; t--) applied[t].restore();
    result.adversarial.push(total);
  });
  return result;
}

function sgd(model: Mlp, velocity: Map<Tensor, Tensor>, lr: number, momentum: number): void {
  for (const p of Object.values(model.params)) {
    const g = p.grad;
    if (g === null) continue;
    let v = velocity.get(p);
    if (v === undefined) {
      v = zeros(p.shape);
      velocity.set(p, v);
    }
    v.mul_(momentum).add_(g);
    p.sub_(v, lr);
  }
}

function train(label: string, args: Args, data: ReturnType<typeof load>, groups: AttackGroup[], k: number) {
  const model = new Mlp(args.hidden, new Generator(args.seed));
  const velocity = new Map<Tensor, Tensor>();
  const batch = 50;
  const started = Date.now();
  let stepIndex = 0;
  for (let epoch = 1; epoch <= args.epochs; epoch++) {
    let clean = 0;
    let adv = 0;
    let batches = 0;
    for (let start = 0; start < args.train; start += batch) {
      const n = Math.min(batch, args.train - start);
      const xb = data.train.x.narrow(0, start, n);
      const yb = data.train.y.narrow(0, start, n);
      const r = step(model, xb, yb, groups, k, args.seed, stepIndex++);
      sgd(model, velocity, 0.05, 0.9);
      clean += r.clean;
      adv += r.adversarial.reduce((a, b) => a + b, 0);
      batches++;
    }
    if (!args.quiet && (epoch === 1 || epoch % 10 === 0 || epoch === args.epochs)) {
      const advText = groups.length > 0 ? `  adversarial loss ${(adv / batches).toFixed(4)}` : '';
      console.log(`[${label}] epoch ${String(epoch).padStart(3)}  clean loss ${(clean / batches).toFixed(4)}${advText}`);
    }
  }
  return {
    label,
    trainAccuracy: model.accuracy(data.train.x, data.train.y),
    testAccuracy: model.accuracy(data.test.x, data.test.y),
    seconds: (Date.now() - started) / 1000,
  };
}

function load(args: Args) {
  return { train: spirals(args.train, args.seed), test: spirals(args.test, args.seed + 1000) };
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const sd = (a: number[]) => Math.sqrt(mean(a.map((v) => (v - mean(a)) ** 2)));

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  setNumThreads(1);
  console.log(
    `Two spirals: ${args.train} training points, ${args.test} held out; MLP 2-${args.hidden}-${args.hidden}-2, ` +
      `SGD momentum 0.9, ${args.epochs} epochs, seeds ${args.seed}..${args.seed + args.seeds - 1}.`,
  );
  const attack: AttackGroup[] = [
    { target: 'input.weight', epsilon: 0.5, p: 0.5 },
    { target: 'hidden.weight', epsilon: 0.5, p: 0.5 },
  ];
  const methods: Array<[string, AttackGroup[]]> = [
    ['plain', []],
    ['DropAttack-1', attack],
  ];
  const results = new Map<string, ReturnType<typeof train>[]>(methods.map(([m]) => [m, []]));
  for (let s = args.seed; s < args.seed + args.seeds; s++) {
    const seeded = { ...args, seed: s, quiet: args.quiet || s !== args.seed };
    const data = load(seeded);
    for (const [label, groups] of methods) results.get(label)!.push(train(label, seeded, data, groups, 1));
  }
  console.log('');
  console.log('method          train acc        test acc         seconds/run');
  for (const [label] of methods) {
    const runs = results.get(label)!;
    const tr = runs.map((r) => 100 * r.trainAccuracy);
    const te = runs.map((r) => 100 * r.testAccuracy);
    console.log(
      `${label.padEnd(14)}  ${mean(tr).toFixed(2).padStart(6)} ± ${sd(tr).toFixed(2).padEnd(5)}  ` +
        `${mean(te).toFixed(2).padStart(6)} ± ${sd(te).toFixed(2).padEnd(5)}  ${mean(runs.map((r) => r.seconds)).toFixed(2).padStart(8)}`,
    );
  }
  console.log(`(mean ± sd over ${args.seeds} seeds; the first seed's losses are printed above)`);
}

main();
