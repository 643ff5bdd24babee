#!/usr/bin/env node
import { Command, Option } from 'commander';
import { watchParentProcess } from '../runtime/core/parent-watchdog';
import { applyNativeTfDefaults } from '../runtime/core/tf-native-env';
import { runBenchEnvsCommand } from './commands/bench-envs';
import { type BenchRemoteCommandOptions, runBenchRemoteCommand } from './commands/bench-remote';
import { BENCHMARKED_ALGOS, type BenchLearnerCommandOptions, CASES_HELP, DEFAULT_LEARNER_ENV, runBenchLearnerCommand } from './commands/bench-learner';
import { type CheckEnvCommandOptions, runCheckEnvCommand } from './commands/check-env';
import { type CollectCommandOptions, runCollectCommand } from './commands/collect';
import { runEnvsCommand } from './commands/envs';
import { type EvalCommandOptions, runEvalCommand } from './commands/eval';
import { type RolloutCommandOptions, runRolloutCommand } from './commands/rollout';
import { type TrainCommandOptions, runTrainCommand } from './commands/train';
import { type TransferCommandOptions, runTransferCommand } from './commands/transfer';
import { type SweepCommandOptions, runSweepCommand } from './commands/sweep';
import { type WorkerCommandOptions, queueEvaluateCommand, runWorkerCommand, sweepReportCommand, sweepStatusCommand } from './commands/queue';

// libtensorflow reads its thread and oneDNN settings once, when it loads; nothing above requires
// @tensorflow/tfjs-node (it is loaded on demand by the backend choice), so this comes first.
applyNativeTfDefaults();

// Output piped into `head` and the like: stop quietly when the reader goes away.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

// Started by a study or a queue worker: stop when that process is gone (even SIGKILLed), so no
// orphan keeps writing a run directory another worker may be given. Its own children do not inherit this.
watchParentProcess((parentPid) => {
  process.stderr.write(`troupe: the process that started this one (pid ${parentPid}) is gone; stopping\n`);
  process.exit(1);
});

const program = new Command();
// Lets `troupe sweep status --queue …` give --queue to the subcommand.
program.enablePositionalOptions();
program.name('troupe').description('Multi-agent reinforcement learning: environments, rollouts, training and evaluation.').version('0.1.0');

program
  .command('envs')
  .description('list registered environments with their agents and spaces')
  .option('--json', 'machine-readable output')
  .option('--splits', 'only the benchmark splits (MT10, ML10, ML1-<kind>): env ids, settings, train/test kinds')
  .action(async (opts: { json?: boolean; splits?: boolean }) => runEnvsCommand(opts));

program
  .command('check-env')
  .description('run the conformance checks on a registered env id or on your own env module (default export or createEnv)')
  .argument('<target>', 'env id (e.g. lbf-8x8-2p-2f-coop) or path to a .js/.ts module')
  .option('--seed <seed>', 'seed for resets and random actions', '0')
  .option('--episodes <n>', 'episodes per rollout check', '3')
  .option('--option <key=value>', 'an env option passed to the factory, e.g. --option grid_size=10 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--options <json>', 'env options as a JSON object, e.g. \'{"grid_size": 10}\' (--option pairs apply on top)')
  .option('--json', 'machine-readable report')
  .action(async (target: string, opts: CheckEnvCommandOptions) => {
    process.exitCode = await runCheckEnvCommand(target, opts);
  });

const backendOption = () => new Option('--backend <name>', 'tfjs backend (default: the config\'s run.backend; auto = train: the faster for this run, timed at the start; resume/eval: the run\'s recorded backend)').choices(['auto', 'tensorflow', 'wasm', 'cpu']);

program
  .command('train')
  .description('train from a YAML run config; writes config.yaml, metrics.jsonl, checkpoints/, summary.json and learning-curve.svg to the run directory')
  .argument('[config]', 'run config (YAML), e.g. configs/quickstart.yaml; optional with --resume')
  .option('--set <key=value>', 'override a config key, e.g. --set algo.lr=0.001 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--out <dir>', 'run directory (default runs/<env>_<algo>_seed<seed>_<time>; with --resume, the resumed run\'s)')
  .option('--workers <n>', 'rollout worker threads (run.workers; 0 = in-process; auto = in-process for cheap envs, else one per core, timed at the start)')
  .option('--seed <seed>', 'run.seed')
  .option('--resume <dir>', 'continue a run from its newest checkpoint (run directory or .ckpt file)')
  .option('--broker <url>', 'Redis URL (redis://[user:password@]host:port, rediss://, unix://…): step the training envs on `troupe rollout` hosts (run.remote sets shards and lease); metrics are identical to --workers runs')
  .addOption(backendOption())
  .option('--no-progress', 'plain log lines instead of a progress bar')
  .action(async (config: string | undefined, opts: TrainCommandOptions) => {
    await runTrainCommand(config, opts);
  });

program
  .command('rollout')
  .description('a rollout host: claim shards of the runs that `troupe train --broker` registered on the broker and step their envs here, until Ctrl-C (start one on each machine)')
  .requiredOption('--broker <url>', 'Redis URL of the broker (the same as the learner\'s)')
  .option('--workers <n>', 'worker threads stepping the envs, shared by the shards served (0 = in the main thread)', '2')
  .option('--max-shards <n>', 'shards served at once, over all runs (default: --workers, at least 1)')
  .action(async (opts: RolloutCommandOptions) => {
    await runRolloutCommand(opts);
  });

program
  .command('eval')
  .description('evaluate a trained run greedily (run directory or checkpoint file), or a random policy on an env id or env module: mean/std team return, episode length, win/success rate')
  .argument('<target>', 'run directory, .ckpt file, env id or env module path (with --policy random|expert)')
  .addOption(new Option('--policy <policy>', 'policy for an env id target: random, or the scripted expert of a manipulation task').choices(['random', 'expert']).default('random'))
  .option('--noise <sigma>', 'with --policy expert: Gaussian action noise (standard deviation)')
  .option('--env <id>', 'evaluate on this env instead of the one trained on (same agents and spaces)')
  .option('--task <key>', 'a multi-task run: evaluate this task only (default: every task)')
  .option('--option <key=value>', 'env option for an env id or module target, or for --env (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--options <json>', 'env options as a JSON object (--option pairs apply on top)')
  .option('--sample', 'sample actions from the policy instead of the greedy argmax (policy-gradient runs)')
  .option('--episodes <n>', 'episodes to run', '100')
  .option('--seed <seed>', 'seed', '0')
  .option('--envs <n>', 'parallel env copies', '8')
  .option('--workers <n>', 'worker threads (0 = in-process)', '0')
  .option('--max-steps <n>', 'stop after this many vector steps with the episodes that ended, and say so (default: twice what the env\'s declared episode limit needs, or 1,000,000)')
  .addOption(new Option('--mode <mode>', 'a meta-learner run (meta_dt): how it learns which task it is in — zero-shot (its own transitions only), few-shot (prompts from its own earlier rollouts) or demo (prompts from the task\'s dataset); repeat the flag or separate by commas for several').argParser((v: string, acc: string[] | undefined) => [...(acc ?? []), ...v.split(',')]))
  .option('--per-task', 'for a benchmark split env (MT10, ML10, ML10:test, ML1-<kind>): evaluate each member task separately (--episodes each, via <id>/<kind>) and report per-task success rates and their mean')
  .addOption(backendOption())
  .option('--json', 'machine-readable output')
  .action(async (target: string, opts: EvalCommandOptions) => {
    await runEvalCommand(target, opts);
  });

program
  .command('transfer')
  .description('a transfer study: pretrain on the sources, then train every target under each condition (scratch, frozen, finetune, random_frozen) with several seeds, each run a run directory of its own; again to resume. A study with method: mra trains MRA, unimodal and scratch runs on resource-N populations and evaluates them on held-out ones')
  .argument('<study>', 'transfer study (YAML), e.g. configs/transfer/smoke.yaml or configs/mra/smoke.yaml')
  .option('--out <dir>', 'study folder (default runs/transfer/<study name>)')
  .option('--jobs <n>', 'runs at a time, each its own process (default: the number of cores)')
  .option('--sources <ids>', 'comma-separated source env ids instead of the study\'s; with --targets, also the source → target matrix (each source pretrained alone); MTMA studies only')
  .option('--targets <ids>', 'comma-separated target env ids instead of the study\'s')
  .option('--dry-run', 'list the runs and their state without training')
  .option('--queue <url>', 'submit the runs and the report as jobs to the run queue at this Redis URL (trained by `troupe worker`s) instead of running them here')
  .addOption(new Option('--backend <name>', 'with --queue: the tfjs backend of every run (default: the study\'s run.backend; auto = wasm)').choices(['auto', 'tensorflow', 'wasm', 'cpu']))
  .option('--attempts <n>', 'with --queue: tries per run before it counts as failed (default 3, exponential backoff)')
  .action(async (study: string, opts: TransferCommandOptions) => {
    process.exitCode = await runTransferCommand(study, opts);
  });

const sweep = program
  .command('sweep')
  .description('a hyperparameter sweep: a base run config × a grid of --set overrides × seeds, each run a run directory of its own, then a report ranking the conditions; again to resume. With --queue, the runs go to a run queue on Redis for `troupe worker`s')
  .argument('<study>', 'sweep study (YAML), e.g. configs/sweeps/lbf-lr.yaml')
  .option('--out <dir>', 'study folder (default runs/sweeps/<study name>)')
  .option('--jobs <n>', 'runs at a time, each its own process (default: the number of cores)')
  .option('--dry-run', 'list the runs and their state without training')
  .option('--queue <url>', 'submit the runs and the report as jobs to the run queue at this Redis URL instead of running them here')
  .addOption(new Option('--backend <name>', 'with --queue: the tfjs backend of every run (default: the config\'s run.backend; auto = wasm)').choices(['auto', 'tensorflow', 'wasm', 'cpu']))
  .option('--attempts <n>', 'with --queue: tries per run before it counts as failed (default 3, exponential backoff)')
  .enablePositionalOptions()
  .action(async (study: string, opts: SweepCommandOptions) => {
    process.exitCode = await runSweepCommand(study, opts);
  });

sweep
  .command('status')
  .description('a queued study\'s runs: waiting, running (on which worker, how far), done, failed (with the error)')
  .argument('<study>', 'the study file, its name or its id')
  .requiredOption('--queue <url>', 'the run queue (Redis URL)')
  .option('--watch', 'follow it with a progress bar until it finishes')
  .addOption(new Option('--interval <ms>', 'with --watch: how often to look').hideHelp())
  .action(async (study: string, opts: { queue: string; watch?: boolean; interval?: string }) => {
    process.exitCode = await sweepStatusCommand(study, opts);
  });

sweep
  .command('report')
  .description('write a queued study\'s report (from the runs\' job results) into a local folder')
  .argument('<study>', 'the study file, its name or its id')
  .requiredOption('--queue <url>', 'the run queue (Redis URL)')
  .option('--out <dir>', 'folder for the report files (default runs/queue-reports/<study id>)')
  .action(async (study: string, opts: { queue: string; out?: string }) => {
    process.exitCode = await sweepReportCommand(study, opts);
  });

program
  .command('worker')
  .description('train queued runs (troupe sweep|transfer --queue) as `troupe train` processes; SIGINT/SIGTERM: take no more jobs, checkpoint the running ones and stop')
  .requiredOption('--queue <url>', 'the run queue (Redis URL, e.g. redis://host:6379)')
  .option('--concurrency <n>', 'runs at a time', '1')
  .option('--runs-dir <dir>', 'where this worker keeps run directories (default runs/queue)')
  .addOption(new Option('--lock-ms <ms>', 'job lock duration: a dead worker\'s job goes to another one after this long (env TROUPE_QUEUE_LOCK_MS; default 30000)').hideHelp())
  .addOption(new Option('--stalled-ms <ms>', 'how often stalled jobs are looked for (env TROUPE_QUEUE_STALLED_MS; default 30000)').hideHelp())
  .action(async (opts: WorkerCommandOptions) => {
    process.exitCode = await runWorkerCommand(opts);
  });

program
  .command('queue-evaluate', { hidden: true })
  .description('(used by troupe worker) an evaluation or report a queued job needs, run off the worker\'s event loop')
  .argument('<request>', 'request JSON file')
  .argument('<result>', 'result JSON file to write')
  .action(async (request: string, result: string) => {
    process.exitCode = await queueEvaluateCommand(request, result);
  });

program
  .command('collect')
  .description('record offline datasets: for each task of the env (every task of a task family such as point-robot, or a chosen split), episodes of scripted, random or trained policies; one .msgpack per task and a manifest dataset.json; again to finish an interrupted collection')
  .argument('<config>', 'collect config (YAML), e.g. configs/meta-dt/point-robot-collect.yaml')
  .option('--out <dir>', 'dataset folder (default runs/datasets/<config name>)')
  .option('--workers <n>', 'rollout worker threads (default: the config\'s workers)')
  .option('--no-progress', 'plain log lines instead of a progress bar')
  .action(async (config: string, opts: CollectCommandOptions) => {
    await runCollectCommand(config, opts);
  });

const bench = program.command('bench').description('measure speed (results go into BENCHMARKS.md)');
bench
  .command('envs')
  .description('env-steps/s and agent-steps/s of the built-in tasks (gridworld and manipulation) with a random policy: one env, and a vector in-process, over 1 and 2 workers double-buffered, 2 workers lock-step, and workers: auto (its choice and reason listed below the table)')
  .option('--ids <ids>', 'comma-separated env ids (default: one scenario per task)')
  .option('--envs <n>', 'env copies per vector', '64')
  .option('--seconds <s>', 'measuring time per repeat', '1')
  .option('--repeats <n>', 'repeats per measurement (the median is reported)', '3')
  .option('--json', 'machine-readable output')
  .action(async (opts: { ids?: string; envs: string; seconds: string; repeats: string; json?: boolean }) => {
    await runBenchEnvsCommand(opts);
  });

bench
  .command('remote')
  .description('lock-step remote rollouts: ms per vector step in-process, over worker threads, and on one `troupe rollout` host (started here, as a child process) through the broker')
  .requiredOption('--broker <url>', 'Redis URL of a running server')
  .option('--ids <ids>', 'comma-separated env ids', 'lbf-8x8-2p-2f-coop,reach')
  .option('--envs <n>', 'env copies per vector', '64')
  .option('--workers <n>', 'worker threads (here and on the host; the host serves that many shards)', '2')
  .option('--seconds <s>', 'measuring time per mode', '3')
  .option('--json', 'machine-readable output')
  .action(async (opts: BenchRemoteCommandOptions) => {
    await runBenchRemoteCommand(opts);
  });

bench
  .command('learner')
  .description('update speed of the learners on synthetic experience: ms/update, kernel calls/update, agent-steps learned/s and estimated GFLOP/s against the backend\'s own matmul peak measured in the same run; several backends side by side')
  .option('--backend <name>', 'auto (wasm, else tfjs-node, else cpu; untimed), tensorflow, wasm, cpu, all (tensorflow and wasm: every one that loads; skipped ones are listed with the reason), or a comma-separated list such as all,cpu; more than one runs in one child process each, repeats interleaved', 'auto')
  .option('--cases <list>', `comma-separated named cases, or all: ${CASES_HELP}`)
  .option('--algos <list>', `instead of --cases: these algorithms (${BENCHMARKED_ALGOS.join(', ')}) × use_rnn on --env, at each benchmark hook's own sizes`)
  .option('--env <id>', `with --algos: env whose layout sizes the networks (default ${DEFAULT_LEARNER_ENV})`)
  .option('--rnn', 'with --algos: only use_rnn: true (default: both)')
  .option('--no-rnn', 'with --algos: only use_rnn: false (default: both)')
  .option('--seconds <s>', 'measuring time per repeat for each measurement', '2')
  .option('--repeats <n>', 'repeats per measurement (the median is reported)', '3')
  .option('--json', 'machine-readable output (with kernel counts by name)')
  .action(async (opts: BenchLearnerCommandOptions) => {
    await runBenchLearnerCommand(opts);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`troupe: ${error instanceof Error ? error.message : String(error)}\n`);
  if (process.env.TROUPE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
