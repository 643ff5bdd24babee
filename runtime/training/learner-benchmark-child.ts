/**
 * One backend of a several-backend `troupe bench learner` (see `learner-benchmark.ts`): forked by
 * the parent, it answers prepare / repeat / finish over the IPC channel and exits when the
 * channel closes. A failure goes back as a message naming it, so the parent can report the
 * backend as skipped with the reason.
 */
import { BackendSession, type ChildReply, type ChildRequest } from './learner-benchmark';

let session: BackendSession | undefined;

function reply(message: ChildReply): void {
  process.send?.(message);
}

async function handle(request: ChildRequest): Promise<void> {
  try {
    if (request.kind === 'prepare') {
      session = new BackendSession(request.backend, request.cases);
      await session.prepare();
      reply({ kind: 'prepared', backend: session.backend, reason: session.reason, settings: session.settings });
    } else if (!session) {
      reply({ kind: 'failed', error: `bench learner child: '${request.kind}' before 'prepare'` });
    } else if (request.kind === 'repeat') {
      reply({ kind: 'repeated', result: await session.repeat(request.seconds) });
    } else {
      reply({ kind: 'finished', results: session.finish() });
    }
  } catch (error) {
    reply({ kind: 'failed', error: error instanceof Error ? error.message : String(error) });
  }
}

// Requests are handled one at a time, in order: the parent waits for each answer anyway.
let queue: Promise<void> = Promise.resolve();
process.on('message', (request: ChildRequest) => {
  queue = queue.then(() => handle(request));
});
process.on('disconnect', () => {
  session?.dispose();
  process.exit(0);
});
