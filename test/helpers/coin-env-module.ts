import fs from 'node:fs';
import path from 'node:path';

/*
 * A tiny correct env module ("coin", CommonJS) that tests turn into broken ones: each broken
 * module passes one defect hook that edits what reset/step/actionMask/state return. Two agents
 * a0 and a1, Box(4) observations, Discrete(5) actions with a mask, a 6-number state, episodes
 * of exactly 10 steps.
 */

/** The compiled spaces, required by absolute path (a module outside the repository cannot resolve `troupe` yet). */
const SPACES = path.join(__dirname, '..', '..', 'envs', 'spaces', 'index.js');

const BASE_SOURCE = `
const { Box, Discrete } = require(${JSON.stringify(SPACES)});
class CoinEnv {
  constructor(options = {}, defect = {}) {
    this.defect = defect;
    this.possibleAgents = ['a0', 'a1'];
    this.agents = [];
    this.metadata = { id: 'coin', family: 'test/coin', maxEpisodeSteps: 10 };
    this.obsSpace = new Box(0, 1, [4]);
    this.actSpace = new Discrete(5);
    this.stateSpace = new Box(0, 1, [6]);
    this.t = 0;
  }
  observationSpace() { return this.obsSpace; }
  actionSpace() { return this.actSpace; }
  obs(agent) { return Float32Array.from([this.t / 10, agent === 'a0' ? 0 : 1, 0.5, 0.25]); }
  actionMask(agent) {
    const m = Uint8Array.from([1, 1, 1, 1, this.t % 2]);
    return this.defect.mask ? this.defect.mask(m, agent, this) : m;
  }
  state() {
    const s = Float32Array.from([this.t / 10, 0, 0, 0, 0, 1]);
    return this.defect.state ? this.defect.state(s, this) : s;
  }
  reset() {
    this.t = 0;
    this.agents = [...this.possibleAgents];
    const out = { observations: { a0: this.obs('a0'), a1: this.obs('a1') }, infos: { a0: {}, a1: {} } };
    return this.defect.reset ? this.defect.reset(out, this) : out;
  }
  step(actions) {
    this.t++;
    const out = { observations: {}, rewards: {}, terminations: {}, truncations: {}, infos: {} };
    for (const a of this.agents) {
      out.observations[a] = this.obs(a);
      out.rewards[a] = actions[a] === 1 ? 1 : 0;
      out.terminations[a] = false;
      out.truncations[a] = this.t >= 10;
      out.infos[a] = {};
    }
    if (this.t >= 10) this.agents = [];
    return this.defect.step ? this.defect.step(out, this) : out;
  }
  render() { return 't=' + this.t; }
}
module.exports = { CoinEnv };
`;

/**
 * Writes the coin env's base into `dir` (once) and a module `<name>.js` whose env has the given
 * defect: the source of an object literal of hooks `{ reset(out, env), step(out, env),
 * mask(mask, agent, env), state(state, env) }`, each returning the (edited) value. Returns the
 * module's absolute path.
 */
export function writeCoinModule(dir: string, name: string, defect = '{}'): string {
  const base = path.join(dir, 'coin-base.js');
  if (!fs.existsSync(base)) fs.writeFileSync(base, BASE_SOURCE);
  const file = path.join(dir, `${name}.js`);
  fs.writeFileSync(file, `const { CoinEnv } = require('./coin-base.js');\nexports.createEnv = (options) => new CoinEnv(options, ${defect});\n`);
  return file;
}
