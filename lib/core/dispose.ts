// Symbol.dispose for `using` declarations and for the classes' [Symbol.dispose] methods.
//
// Node 18.18+ and 20.4+ define it (as Symbol.for('nodejs.dispose')); older Node 18
// releases do not, and TypeScript's downlevelled `using` looks it up at run time. The
// polyfill takes the same registered symbol Node uses, so code that polyfills the same
// way, and a later Node that has it built in, agree on it. It runs once, from native.ts,
// before any class with a [Symbol.dispose] method is defined.
const symbols = Symbol as unknown as { dispose?: symbol; asyncDispose?: symbol };
symbols.dispose ??= Symbol.for('nodejs.dispose');
symbols.asyncDispose ??= Symbol.for('nodejs.asyncDispose');

export {};
