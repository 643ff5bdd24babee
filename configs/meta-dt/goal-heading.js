#!/usr/bin/env node
// Where a Point-Robot Meta-DT model heads (BENCHMARKS.md, the Meta-DT study's diagnosis): per
// checkpoint and split, the return of one greedy zero-shot episode per task and the mean cosine
// between its actions and the direction to the goal; then, on each task's best dataset episode,
// the cosine of that episode's own actions and of the model's actions when fed that episode's
// history (`actionsAlong`: the same z and returns-to-go acting would give it).
//   npm run build && node configs/meta-dt/goal-heading.js <checkpoint or run dir>...
// Run from the folder the runs were trained in (their dataset paths are relative to it).
'use strict';
const path = require('node:path');
const D = path.join(__dirname, '..', '..', 'dist');
const YAML = require('yaml');
const { registerBuiltinEnvs } = require(`${D}/envs/builtin`);
const { locateCheckpoint } = require(`${D}/runtime/core/checkpoint-locator`);
const { parseSavedRunConfig } = require(`${D}/runtime/training/config-loader`);
const { runTasks } = require(`${D}/runtime/training/run-config`);
const { readDataset } = require(`${D}/trainers/dataset`);
const { createLearner } = require(`${D}/trainers/index`);
const { learnerStateOf } = require(`${D}/runtime/training/learner-checkpoint`);
const { selectBackend } = require(`${D}/runtime/core/tf-backend`);
const { VectorEnv } = require(`${D}/runtime/rollout/vector-env`);
const { collectEpisodes } = require(`${D}/runtime/rollout/collect-episodes`);
const { envShape } = require(`${D}/envs/env-shape`);
const { makeEnv } = require(`${D}/envs/registry`);

/** Mean over steps of cos(action, goal − position). */
function cosToGoal(ep, actions, goal) {
  const T = ep.rewards.length; let s = 0;
  for (let t = 0; t < T; t++) {
    const dx = goal[0] - ep.obs[2 * t], dy = goal[1] - ep.obs[2 * t + 1];
    const ax = actions[2 * t], ay = actions[2 * t + 1];
    const n = Math.hypot(dx, dy) * Math.hypot(ax, ay);
    s += n > 1e-9 ? (dx * ax + dy * ay) / n : 0;
  }
  return s / T;
}
const ret = (ep) => ep.rewards.reduce((a, b) => a + b, 0);

(async () => {
  registerBuiltinEnvs();
  await selectBackend('wasm');
  if (process.argv.length < 3) {
    process.stderr.write('usage: node configs/meta-dt/goal-heading.js <checkpoint or run dir>...\n');
    process.exit(2);
  }
  for (const ckpt of process.argv.slice(2)) {
    const located = await locateCheckpoint(ckpt);
    const config = parseSavedRunConfig(YAML.stringify(located.data.config), 'saved');
    const all = runTasks(config);
    const datasets = {}; const specs = [];
    if (all.some((t) => t.env.id !== 'point-robot')) throw new Error(`${ckpt}: not a point-robot run (this analysis reads 2-D positions and goals)`);
    const shape = envShape(makeEnv('point-robot'));
    for (const [index, t] of all.entries()) { datasets[t.key] = await readDataset(t.dataset); specs.push({ key: t.key, index, env: t.env, shape, numEnvs: 1 }); }
    const learner = createLearner({ config: config.algo, tasks: specs, seed: config.run.seed, datasets });
    await learner.restoreState(learnerStateOf(located.data, located.path));
    const rows = { train: [], test: [] };
    for (const t of all) {
      const data = datasets[t.key]; const goal = data.header.taskParameters.goal;
      const split = data.header.split;
      const best = data.episodes.reduce((a, b) => (ret(b) > ret(a) ? b : a));
      const vec = await VectorEnv.create({ env: t.env, numEnvs: 1, workers: 0, seed: 1 });
      const [own] = await collectEpisodes(vec, learner.inferencePolicy(t.key, 1, 's', 'zero-shot'), 1);
      await vec.close();
      rows[split].push({
        ownReturn: ret(own), ownCos: cosToGoal(own, own.actions, goal),
        expertReturn: ret(best), expertCos: cosToGoal(best, best.actions, goal),
        forcedOnExpertCos: cosToGoal(best, learner.actionsAlong(t.key, best), goal),
      });
    }
    const mean = (xs, k) => (xs.reduce((a, r) => a + r[k], 0) / xs.length).toFixed(3);
    for (const split of ['train', 'test']) {
      const r = rows[split];
      console.log(`${ckpt} ${split} (${r.length} tasks): own zero-shot return ${mean(r, 'ownReturn')}, cos(own action, goal dir) ${mean(r, 'ownCos')} | best dataset episode: return ${mean(r, 'expertReturn')}, cos(its action) ${mean(r, 'expertCos')}, cos(model's action fed its history) ${mean(r, 'forcedOnExpertCos')}`);
    }
    learner.dispose();
  }
})().catch((e) => { console.error(e); process.exit(1); });
