import { registerBuiltinEnvs } from '../../envs/builtin';
import { connectRedis } from '../../runtime/core/redis-connection';
import { selectBackend } from '../../runtime/core/tf-backend';
import { serveAsyncRun } from '../../runtime/rollout/async-actor';
import { listRemoteRuns } from '../../runtime/rollout/remote-registry';

/*
 * An acting rollout host in its own process, for tests and measurements of async mode:
 * `node async-host.js <redis-url> <host-id> [workers]` waits for an async run to be registered,
 * serves it until it ends, and prints one line per event (`sent <n>` after every chunk, then
 * `report <json>`), so a test can tell how far it got before killing it.
 */
async function main(): Promise<void> {
  const [url, hostId, workers = '0'] = process.argv.slice(2);
  registerBuiltinEnvs();
  await selectBackend('wasm');
  const redis = await connectRedis(url, { purpose: 'async rollout host (test)' });
  const deadline = Date.now() + 30000;
  for (;;) {
    const run = (await listRemoteRuns(redis)).find((r) => r.mode === 'async');
    if (run) {
      const report = await serveAsyncRun(redis, run, { workers: Number(workers), hostId, pollMs: 200, onChunk: (sent) => console.log(`sent ${sent}`), onEvent: (m) => console.log(m) });
      console.log(`report ${JSON.stringify(report)}`);
      break;
    }
    if (Date.now() > deadline) throw new Error('no async run registered within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  redis.disconnect();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
