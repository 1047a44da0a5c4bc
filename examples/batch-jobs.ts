// A batch-job server: the run configurations given on the command line are queued and
// trained one after another while the HTTP endpoints keep answering with the queue and
// the live progress (training steps run on the thread pool). The server is the one of
// `dropattack serve` (lib/app/serve.ts, docs/serve.md): every path in a configuration is
// relative to --data-root (reads) or --runs-root (writes) and may not leave it.
//
//   node dist/examples/batch-jobs.js --data-root data --runs-root runs [--port 8090] [--exit-when-done] run1.json run2.json ...
//   curl http://127.0.0.1:8090/jobs
//   curl -X POST -H 'content-type: application/json' --data @run3.json http://127.0.0.1:8090/jobs
import { readConfigFile } from '../lib/app/config';
import { JobServer } from '../lib/app/serve';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let port = 8090;
  let exitWhenDone = false;
  let dataRoot = '.';
  let runsRoot = '.';
  const files: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    if (argv[k] === '--port') port = Number(argv[++k]);
    else if (argv[k] === '--data-root') dataRoot = argv[++k];
    else if (argv[k] === '--runs-root') runsRoot = argv[++k];
    else if (argv[k] === '--exit-when-done') exitWhenDone = true;
    else files.push(argv[k]);
  }
  const server = await JobServer.start({ dataRoot, runsRoot, port, log: (line) => console.log(line) });
  let failed = 0;
  for (const f of files) {
    try {
      await server.submit(readConfigFile(f));
    } catch (e) {
      console.error(`${f}: ${(e as Error).message}`);
      failed++;
    }
  }
  console.log(`batch-jobs: ${files.length - failed} job(s) queued; GET ${server.url}/jobs for the status`);
  if (!exitWhenDone) return new Promise<number>(() => undefined); // serve until killed
  await server.idle();
  failed += server.list().filter((j) => j.state !== 'done').length;
  await server.close();
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`batch-jobs: ${(e as Error).message ?? e}`);
    process.exit(1);
  },
);
